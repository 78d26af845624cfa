package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kargo-gha/kargo-gha/pkg/step"
)

// addVerbose adds --verbose to every command: the requests made to GitHub
// and what they cost, as the Kargo module's metrics count them (answers by
// endpoint and status, 304s, the rate limit left, how a dispatch's run was
// found, refusals to guess, step calls). The returned function prints them
// on stderr once the command has ended, whatever its outcome; stdout keeps
// only the step's output.
func addVerbose(root *cobra.Command, f *Factory) (report func()) {
	var verbose bool
	var counts *step.Counts
	root.PersistentFlags().BoolVar(&verbose, "verbose", false, "print, at the end, the requests made to GitHub by endpoint and answer, 304s, the rate limit left and how the run was found (on stderr)")
	root.PersistentPreRun = func(*cobra.Command, []string) {
		if verbose && f.Runner != nil {
			counts = &step.Counts{}
			f.Runner.Observe(counts)
		}
	}
	return func() {
		switch l := f.jsonLog(); {
		case counts == nil:
		case l != nil: // --log-format json: every stderr line is a JSON object, these too
			for _, line := range counts.Lines() {
				l.Info("kargo-gha: "+line, "verbose", true)
			}
		default:
			printCounts(f.IO.ErrOut, counts)
		}
	}
}

func printCounts(w io.Writer, c *step.Counts) {
	for _, l := range c.Lines() {
		fmt.Fprintln(w, "kargo-gha: "+l)
	}
}
