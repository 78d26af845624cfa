package ghsim

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
)

// A ref's current commit. GitHub runs a dispatched workflow on the commit
// its ref points at when the dispatch arrives (head_sha, head_branch), and
// a branch can move between the Freight a promotion carries and the
// dispatch. Tests move a branch with SetRefCommit.

// SetRefCommit points ref (a branch or tag, created if missing) at the
// commit sha: runs dispatched from now on carry it as head_sha.
func (s *Server) SetRefCommit(r *Repo, ref, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Refs[ref] = true
	if r.commits == nil {
		r.commits = map[string]string{}
	}
	r.commits[ref] = strings.ToLower(sha)
}

// RefCommit is the commit ref points at now.
func (s *Server) RefCommit(r *Repo, ref string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return r.commit(ref)
}

// commit is the commit ref points at: the one set with SetRefCommit, else
// one derived from the repository and ref, so that every ref has a stable
// commit of its own without a test naming it. The caller holds s.mu.
func (r *Repo) commit(ref string) string {
	if sha, ok := r.commits[ref]; ok {
		return sha
	}
	sum := sha1.Sum([]byte(r.Owner + "/" + r.Name + "@" + ref))
	return hex.EncodeToString(sum[:])
}
