package cli

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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
run); 75 failure that a later retry may fix; 130 interrupted (SIGINT, SIGTERM,
SIGHUP or SIGQUIT; a second signal kills the process).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.AddCommand(NewCmdDispatch(f, nil), NewCmdWait(f, nil), NewCmdMigrate(f, nil), newCmdVersion(f))
	return root
}

func newCmdVersion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(f.IO.Out, "kargo-gha %s (%s, %s/%s)\n", f.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
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
	// A broken stderr cannot be told either: the write fails, once, and the
	// exit code is all that is left.
	fmt.Fprintln(f.IO.ErrOut, "error: "+oneLine(safetext.Clean(errorMessage(ctx, cmd, err))))
	if errors.Is(context.Cause(ctx), ErrInterrupted) {
		return ExitInterrupted
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
