package config

import (
	"strings"

	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
)

// convertCommit checks the commit settings and a ref that is a commit.
// workflow_dispatch takes a branch or tag, never a commit: GitHub answers
// "No ref found for: <sha>". Saying so before any request, with the way to
// run a given commit, saves the user a failed promotion.
func (c *DispatchConfig) convertCommit(d *Dispatch, ps *problems) {
	if dispatch.IsCommitSHA(strings.TrimPrefix(strings.TrimPrefix(c.Ref, "refs/heads/"), "refs/tags/")) {
		ps.add("ref", "%q is a commit ID; workflow_dispatch runs a workflow on a branch or tag only. "+
			"Dispatch on the branch (ref: main), pass the commit as an input the workflow checks out (inputs: {sha: ...}), "+
			"and set expectedHeadSHA to it to fail when the branch has moved", c.Ref)
	}
	if c.ExpectedHeadSHA != "" && dispatch.IsCommitSHA(c.ExpectedHeadSHA) {
		d.ExpectedHeadSHA = strings.ToLower(c.ExpectedHeadSHA)
	}
	d.CancelOnMismatch = c.CancelOnMismatch
	if c.CancelOnMismatch && c.ExpectedHeadSHA == "" {
		ps.add("cancelOnMismatch", "needs expectedHeadSHA: the commit a run must build to be kept")
	}
}
