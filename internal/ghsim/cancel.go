package ghsim

import (
	"net/http"
	"time"
)

// cancelDocs is the cancel endpoint's documentation, as GitHub links it.
const cancelDocs = docsBase + "/actions/workflow-runs#cancel-a-workflow-run"

// cancelRun answers POST /repos/{owner}/{repo}/actions/runs/{id}/cancel as
// GitHub documents it: 202 with an empty object for a run that has not
// completed (it then completes as cancelled), 409 for a completed one.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-runs#cancel-a-workflow-run
func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request, tok string, f *Fault) {
	now := s.now()
	s.mu.Lock()
	rn := s.findRun(r, now)
	status := 0
	switch {
	case rn == nil:
		status = http.StatusNotFound
	default:
		if st, _, _ := rn.status(now); st == "completed" { // a cancelled run too
			status = http.StatusConflict
		} else {
			rn.cancelledAt = now
			rn.cancels++
			status = http.StatusAccepted
		}
	}
	s.mu.Unlock()
	if f != nil && f.AfterAction {
		s.applyFault(w, f)
		return
	}
	switch status {
	case http.StatusNotFound:
		writeError(w, status, "Not Found", cancelDocs)
	case http.StatusConflict:
		writeError(w, status, "Cannot cancel a workflow run that is completed.", cancelDocs)
	default:
		s.writeJSON(w, r, tok, status, map[string]any{})
	}
}

// cancelled reports a run cancelled by then: it shows completed with the
// conclusion cancelled from the moment of the cancel.
func (r *run) cancelled(now time.Time) bool {
	return !r.cancelledAt.IsZero() && !now.Before(r.cancelledAt)
}

// Cancels is how many times run id of r was cancelled (accepted cancels
// that changed it): tests check that a client cancelled once, or never.
func (s *Server) Cancels(r *Repo, id int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rn := range r.runs {
		if rn.id == id {
			return rn.cancels
		}
	}
	return 0
}
