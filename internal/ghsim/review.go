package ghsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// maxReviewBody bounds a review's request body.
const maxReviewBody = 64 << 10

// forever is how long a run of a Manual environment waits without a review:
// longer than anyone leaves a simulator running, short of overflowing time.
const forever = 100 * 365 * 24 * time.Hour

// review is a reviewer's decision on a run's pending deployment.
type review struct {
	decided  bool
	rejected bool
	at       time.Time
}

// waited is how long a run that started waiting at started waits: until the
// decision, or forever while there is none.
func (rv review) waited(started, now time.Time) time.Duration {
	if !rv.decided {
		return forever
	}
	return max(rv.at.Sub(started), 0)
}

// EnvironmentID is the ID pending deployments report for wf's environment
// (the environment_ids a review names).
func EnvironmentID(wf *Workflow) int64 { return wf.ID + 7 }

type reviewBody struct {
	EnvironmentIDs []int64 `json:"environment_ids"`
	State          string  `json:"state"`
	Comment        *string `json:"comment"`
}

// reviewDeployments answers POST .../runs/{id}/pending_deployments: a
// reviewer approves or rejects the run's wait on a Manual environment. An
// approved run goes on to in_progress; a rejected one completes at once
// with conclusion failure, as on GitHub.
func (s *Server) reviewDeployments(w http.ResponseWriter, r *http.Request, tok string, f *Fault) {
	const doc = docsBase + "/actions/workflow-runs#review-pending-deployments-for-a-workflow-run"
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBody))
	var body reviewBody
	if err != nil || json.Unmarshal(raw, &body) != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", doc)
		return
	}
	if (body.State != "approved" && body.State != "rejected") || body.Comment == nil || len(body.EnvironmentIDs) == 0 {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"environment_ids\", \"state\" (approved or rejected) and \"comment\" are required.", doc)
		return
	}
	now := s.now()
	s.mu.Lock()
	rn := s.findRun(r, now)
	status, msg := http.StatusOK, ""
	switch {
	case rn == nil:
		status, msg = http.StatusNotFound, "Not Found"
	case rn.workflow.Environment == nil || !rn.workflow.Environment.Manual:
		status, msg = http.StatusUnprocessableEntity, "No pending deployment requests to approve or reject"
	case !slices.Contains(body.EnvironmentIDs, EnvironmentID(rn.workflow)):
		status, msg = http.StatusUnprocessableEntity, fmt.Sprintf("No pending deployment requests to approve or reject for environment_ids %v", body.EnvironmentIDs)
	default:
		if st, _, _ := rn.status(now); st != "waiting" {
			status, msg = http.StatusUnprocessableEntity, "No pending deployment requests to approve or reject"
		} else {
			rn.review = review{decided: true, rejected: body.State == "rejected", at: now}
		}
	}
	var out []any
	if status == http.StatusOK {
		reviewer := ""
		if info := s.tokens[tok]; info != nil {
			reviewer = info.login
		}
		out = []any{deploymentJSON(rootOf(r), rn, reviewer, now)}
	}
	s.mu.Unlock()
	if status != http.StatusOK {
		writeError(w, status, msg, doc)
		return
	}
	if f != nil && f.AfterAction {
		s.applyFault(w, f)
		return
	}
	s.writeJSON(w, r, tok, http.StatusOK, out)
}

// deploymentJSON is the deployment a review creates; s.mu is held.
func deploymentJSON(root apiRoot, rn *run, login string, now time.Time) map[string]any {
	full := rn.repo.Owner + "/" + rn.repo.Name
	id := rn.id*10 + 9
	env := rn.workflow.Environment.Name
	return map[string]any{
		"url": fmt.Sprintf("%s/repos/%s/deployments/%d", root.api, full, id), "id": id, "node_id": fmt.Sprintf("DE_kwDO%d", id),
		"sha": fmt.Sprintf("%040x", rn.id), "ref": rn.ref, "task": "deploy", "payload": map[string]any{},
		"original_environment": env, "environment": env, "description": nil, "creator": userJSON(root, login),
		"created_at": ts(now), "updated_at": ts(now),
		"statuses_url":   fmt.Sprintf("%s/repos/%s/deployments/%d/statuses", root.api, full, id),
		"repository_url": fmt.Sprintf("%s/repos/%s", root.api, full),
	}
}
