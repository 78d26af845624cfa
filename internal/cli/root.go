package cli

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

// NewRootCmd builds the kargo-gha command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "kargo-gha",
		Short: "GitHub Actions promotion steps for Kargo: dispatch a workflow, wait for its run",
		Long: `kargo-gha runs the gha-dispatch-workflow and gha-wait-for-workflow steps outside Kargo: in an Akuity
Platform custom step, Argo Workflows, Tekton, Jenkins or a shell script. It reads
the same configuration as the step's config block and prints the step's output
as JSON on stdout (and as key=value lines into $KARGO_OUTPUT when set).

Exit codes: 0 success; 1 failure that retrying cannot fix (also when the
work was done but its output could not be written: stderr then names the
run); 2 the command line is wrong (unknown command or flag, a flag value
that does not parse); 75 failure that a later retry may fix; 130 interrupted
(SIGINT, SIGTERM, SIGHUP or SIGQUIT; a second signal kills the process).`,
		Version:       f.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate(versionLine(f) + "\n")
	root.SetFlagErrorFunc(asUsage)
	root.PersistentFlags().Var(&f.LogFormat, "log-format", "format of the progress and error lines on stderr: text or json (one JSON object a line)")
	_ = root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.AddCommand(NewCmdDispatch(f, nil), NewCmdWait(f, nil), NewCmdMigrate(f, nil), NewCmdCheck(f, nil), newCmdVersion(f))
	return root
}

func newCmdVersion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(f.IO.Out, versionLine(f))
			return err
		},
	}
}

// Run executes the command line and returns the exit code. Errors are
// printed as one line on stderr.
func Run(ctx context.Context, f *Factory, args []string) int {
	root := NewRootCmd(f)
	report := addVerbose(root, f)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	report()
	if err == nil {
		return ExitOK
	}
	err = usageOf(cmd, err)
	code := exitCode(ctx, err)
	// A broken stderr cannot be told either: the write fails, once, and the
	// exit code is all that is left.
	f.logError(oneLine(safetext.Clean(errorMessage(ctx, cmd, err))), code)
	return code
}

// exitCode is the class of err as an exit code.
func exitCode(ctx context.Context, err error) int {
	if errors.Is(context.Cause(ctx), ErrInterrupted) {
		return ExitInterrupted
	}
	if errors.As(err, new(*usageError)) {
		return ExitUsage
	}
	if errors.Is(err, context.Canceled) {
		return ExitFinal
	}
	if failure.IsFinal(err) {
		return ExitFinal
	}
	return ExitTransient
}

// errorMessage is err as the user is told it.
func errorMessage(ctx context.Context, cmd *cobra.Command, err error) string {
	if lost, ok := asOutputLost(err); ok && cmd.Name() == "dispatch" {
		lost.dispatched = true
	}
	msg := err.Error()
	if cause := context.Cause(ctx); errors.Is(cause, ErrInterrupted) && !strings.Contains(msg, cause.Error()) {
		// A call the signal cut short fails with "context canceled": say
		// what stopped it.
		msg = "stopped (" + cause.Error() + "): " + msg
	}
	return msg
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// versionLine is the version, the commit and the time of the commit the
// binary was built from, the Go version and the platform. Go records the
// commit of a build in a clone (vcs.revision, vcs.time, vcs.modified);
// where it cannot (-buildvcs=false, a worktree), the Makefile's -X values
// stand in.
func versionLine(f *Factory) string {
	commit, date := f.Commit, f.Date
	if bi, ok := debug.ReadBuildInfo(); ok {
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			commit = rev
			if settings["vcs.modified"] == "true" {
				commit += "+modified"
			}
		}
		if t := settings["vcs.time"]; t != "" {
			date = t
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	if date == "" {
		date = "unknown"
	}
	return fmt.Sprintf("kargo-gha %s (commit %s, commit date %s, %s, %s/%s)", f.Version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
