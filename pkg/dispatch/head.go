package dispatch

import (
	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

// maxBranch bounds a head_branch kept from a server's answer: git allows
// long names, but not this long in practice; a longer one is hostile.
const maxBranch = 255

// IsCommitSHA reports a full commit ID: 40 hex digits (SHA-1) or 64
// (SHA-256 repositories), either case.
func IsCommitSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// HeadOf is the commit and branch a run builds, as far as the server's
// answer can be believed: a head_sha that is not a commit ID is dropped.
func HeadOf(run *github.WorkflowRun) (sha, branch string) {
	if s := run.GetHeadSHA(); IsCommitSHA(s) {
		sha = s
	}
	if b := safetext.Clean(run.GetHeadBranch()); len(b) <= maxBranch {
		branch = b
	}
	return sha, branch
}

// withHead fills the found run's commit from the listing it was found in,
// so that a dispatch found by listing knows it without another request. A
// run GitHub named in its dispatch answer, with no listing, leaves it
// empty: the answer does not carry it.
func withHead(s *State, runs []ListedRun) {
	if s.Run == nil {
		return
	}
	for _, r := range runs {
		if r.ID == s.Run.ID {
			s.Run.HeadSHA, s.Run.HeadBranch = r.HeadSHA, r.HeadBranch
			return
		}
	}
}

// listedRuns is the last listings' runs: the shared one's and this
// workflow and ref's own.
func (w *workflowRuns) listedRuns() []ListedRun {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append(append([]ListedRun(nil), w.sharedRuns...), w.runs...)
}
