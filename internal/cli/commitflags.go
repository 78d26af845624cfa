package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
)

// commitFlags are dispatch's flags for the run's commit: the commit it
// must build, and whether to cancel one that builds another.
type commitFlags struct {
	ExpectedHeadSHA  string
	CancelOnMismatch bool
}

func (c *commitFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&c.ExpectedHeadSHA, "expected-head-sha", "", "fail unless the run builds this commit (40 or 64 hex digits): the branch may have moved since the commit was chosen")
	fl.BoolVar(&c.CancelOnMismatch, "cancel-on-mismatch", false, "with --expected-head-sha: cancel the run (once) when it builds another commit")
}

// apply checks the flags (--ref too: a commit there is refused naming the
// flag), and sets the config fields they give.
func (c *commitFlags) apply(cfg *config.DispatchConfig) error {
	if c.ExpectedHeadSHA != "" && !dispatch.IsCommitSHA(c.ExpectedHeadSHA) {
		return failure.Final(fmt.Errorf("--expected-head-sha %q must be a full commit ID, 40 or 64 hex digits", c.ExpectedHeadSHA))
	}
	if ref := strings.TrimPrefix(strings.TrimPrefix(cfg.Ref, "refs/heads/"), "refs/tags/"); dispatch.IsCommitSHA(ref) {
		return failure.Final(fmt.Errorf("--ref %q is a commit ID; workflow_dispatch runs a workflow on a branch or tag only: give the branch as --ref, the commit as an --input the workflow checks out, and --expected-head-sha to fail when the branch has moved", cfg.Ref))
	}
	cfg.ExpectedHeadSHA, cfg.CancelOnMismatch = c.ExpectedHeadSHA, c.CancelOnMismatch
	return nil
}

// check refuses --cancel-on-mismatch without a commit to compare, from the
// flags or the configuration.
func (c *commitFlags) check(cfg map[string]any) error {
	if c.CancelOnMismatch && cfg["expectedHeadSHA"] == nil {
		return failure.Final(errors.New("--cancel-on-mismatch needs --expected-head-sha (or expectedHeadSHA in the configuration): the commit a run must build to be kept"))
	}
	return nil
}
