package cli

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kargo-gha/kargo-gha/internal/safetext"
	"github.com/kargo-gha/kargo-gha/pkg/failure"
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

Exit codes: 0 success; 1 failure that retrying cannot fix; 75 failure that a
later retry may fix; 130 interrupted (SIGINT or SIGTERM).`,
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
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(f.IO.ErrOut, "error: "+oneLine(safetext.Clean(err.Error())))
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

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
