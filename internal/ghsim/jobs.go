package ghsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// newRun creates a run of wf; s.mu is held.
func (s *Server) newRun(repo *Repo, wf *Workflow, ref string, inputs map[string]any, actor string, delay time.Duration) *run {
	s.nextRunID += 1 + int64(len(s.repos)) // IDs grow in acceptance order, with gaps as on GitHub
	wf.runNumber++
	rn := &run{
		id: s.nextRunID, number: wf.runNumber, workflow: wf, repo: repo, ref: ref, inputs: inputs, actor: actor,
		createdAt: s.now().Add(delay), queuedFor: s.opts.QueuedFor, runFor: s.opts.RunFor,
		headSHA: repo.commit(ref),
	}
	rn.title = renderRunName(wf, inputs)
	repo.runs = append(repo.runs, rn)
	return rn
}

// CreateRun starts a run of the workflow file as if actor had dispatched it
// (another user, another process): tests use it for runs that are not the
// client's own. It returns the run's ID.
func (s *Server) CreateRun(repo *Repo, file, ref, actor string, inputs map[string]any, delay time.Duration) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newRun(repo, repo.workflows[file], ref, inputs, actor, delay).id
}

// renderRunName renders the workflow's run-name for a dispatch, as GitHub
// does for the inputs context: ${{ inputs.NAME }} becomes the input's value.
func renderRunName(wf *Workflow, inputs map[string]any) string {
	if wf.RunName == "" {
		return strings.TrimSuffix(strings.TrimSuffix(wf.File, ".yml"), ".yaml")
	}
	out := wf.RunName
	for {
		i := strings.Index(out, "${{")
		if i < 0 {
			return out
		}
		j := strings.Index(out[i:], "}}")
		if j < 0 {
			return out
		}
		expr := strings.TrimSpace(out[i+3 : i+j])
		val := ""
		if name, ok := strings.CutPrefix(expr, "inputs."); ok {
			if v, ok := inputs[name]; ok {
				val = fmt.Sprint(v)
			}
		}
		out = out[:i] + val + out[i+j+2:]
	}
}

// jobs are a run's jobs as GitHub describes them at now.
func (r *run) jobs(root apiRoot, now time.Time) []any {
	status, _, _ := r.status(now)
	// The jobs end as the run will, also while the run's own conclusion
	// lags (ConclusionLag).
	conclusion := r.conclusion()
	specs := r.workflow.Jobs
	if len(specs) == 0 {
		specs = []Job{defaultJob}
	}
	full := r.repo.Owner + "/" + r.repo.Name
	var out []any
	for i, spec := range specs {
		id := r.id*10 + int64(i) + 1
		jobStatus, jobConcl := status, any(nil)
		if status == "waiting" {
			jobStatus = "queued"
		}
		var steps []any
		if status == "completed" {
			c := "success"
			switch {
			case conclusion != "success" && spec.FailAt > 0:
				c = "failure"
			case conclusion != "success" && spec.Cancelled:
				c = "cancelled"
			}
			jobConcl = c
			for n, name := range spec.Steps {
				sc := "success"
				switch {
				case c == "failure" && n+1 == spec.FailAt:
					sc = "failure"
				case c == "failure" && n+1 > spec.FailAt, c == "cancelled":
					sc = "skipped"
				}
				start, end := r.stepSpan(spec, n+1)
				steps = append(steps, map[string]any{
					"name": name, "status": "completed", "conclusion": sc, "number": n + 1,
					"started_at": ts(start), "completed_at": ts(end),
				})
			}
		}
		started := r.createdAt.Add(r.queuedFor)
		var completedAt any
		if status == "completed" {
			completedAt = ts(started.Add(r.runFor))
		}
		if steps == nil {
			steps = []any{}
		}
		out = append(out, map[string]any{
			"id": id, "run_id": r.id, "run_url": fmt.Sprintf("%s/repos/%s/actions/runs/%d", root.api, full, r.id),
			"node_id": fmt.Sprintf("CR_kwDO%d", id), "head_sha": r.headSHA, "head_branch": r.ref,
			"url":      fmt.Sprintf("%s/repos/%s/actions/jobs/%d", root.api, full, id),
			"html_url": fmt.Sprintf("%s/%s/actions/runs/%d/job/%d", root.web, full, r.id, id),
			"status":   jobStatus, "conclusion": jobConcl, "created_at": ts(r.createdAt), "started_at": ts(started),
			"completed_at": completedAt, "name": spec.Name, "steps": steps,
			"check_run_url": fmt.Sprintf("%s/repos/%s/check-runs/%d", root.api, full, id),
			"labels":        []any{"ubuntu-latest"}, "runner_id": nil, "runner_name": nil, "runner_group_id": nil, "runner_group_name": nil,
			"run_attempt": 1, "workflow_name": strings.TrimSuffix(r.workflow.File, ".yml"),
		})
	}
	return out
}

// findRun returns the visible run named by the request, or nil; s.mu is held.
func (s *Server) findRun(r *http.Request, now time.Time) *run {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	repo := s.repo(r.PathValue("owner"), r.PathValue("repo"))
	if repo == nil || err != nil {
		return nil
	}
	for _, rn := range repo.runs {
		if rn.id == id && rn.visible(now) && !now.Before(rn.createdAt.Add(s.opts.ReadLag)) {
			return rn
		}
	}
	return nil
}

// listJobs answers GET /repos/{owner}/{repo}/actions/runs/{id}/jobs.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, tok string, f *Fault) {
	now := s.now()
	s.mu.Lock()
	rn := s.findRun(r, now)
	var jobs []any
	if rn != nil {
		jobs = rn.jobs(rootOf(r), now)
	}
	s.mu.Unlock()
	if rn == nil {
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/actions/workflow-jobs#list-jobs-for-a-workflow-run")
		return
	}
	if f != nil && f.AfterAction {
		s.applyFault(w, f)
		return
	}
	s.writeJSON(w, r, tok, http.StatusOK, map[string]any{"total_count": len(jobs), "jobs": jobs})
}

// pendingDeployments answers GET .../runs/{id}/pending_deployments.
func (s *Server) pendingDeployments(w http.ResponseWriter, r *http.Request, tok string, f *Fault) {
	now := s.now()
	s.mu.Lock()
	rn := s.findRun(r, now)
	var out []any
	if rn != nil {
		if st, _, _ := rn.status(now); st == "waiting" {
			env := rn.workflow.Environment
			root := rootOf(r)
			var reviewers []any
			for _, login := range env.Reviewers {
				reviewers = append(reviewers, map[string]any{"type": "User", "reviewer": userJSON(root, login)})
			}
			if reviewers == nil {
				reviewers = []any{}
			}
			out = append(out, map[string]any{
				"environment": map[string]any{
					"id": rn.workflow.ID + 7, "node_id": "EN_" + env.Name, "name": env.Name,
					"url":      fmt.Sprintf("%s/repos/%s/%s/environments/%s", root.api, rn.repo.Owner, rn.repo.Name, env.Name),
					"html_url": fmt.Sprintf("%s/%s/%s/deployments/activity_log?environments_filter=%s", root.web, rn.repo.Owner, rn.repo.Name, env.Name),
				},
				"wait_timer": 0, "wait_timer_started_at": nil, "current_user_can_approve": false, "reviewers": reviewers,
			})
		}
	}
	s.mu.Unlock()
	if rn == nil {
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/actions/workflow-runs#get-pending-deployments-for-a-workflow-run")
		return
	}
	if out == nil {
		out = []any{}
	}
	s.writeJSON(w, r, tok, http.StatusOK, out)
}
