package wait

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

const (
	// maxNamedJobs is how many failed jobs a message names; the rest are
	// counted ("2 more jobs failed").
	maxNamedJobs = 3
	// jobsPerPage reads a run's jobs in one request for all but the
	// largest matrices (GitHub's maximum page size).
	jobsPerPage = 100
	// maxTextLen bounds a job or step name taken into a message.
	maxTextLen = 200
)

// FailedJob is a job of a run that failed or was cancelled, with its first
// failed step.
type FailedJob struct {
	Name       string
	Conclusion string
	URL        string
	// StepNumber and Step are the first failed step; zero and "" when no
	// step failed (a job cancelled before it started, a failed setup).
	StepNumber int64
	Step       string
	// ID is the job's ID; StepStarted and StepCompleted are when the
	// failed step ran (zero when GitHub did not say), which is how its
	// lines are found in the job's log (joblog.go).
	ID                         int64
	StepStarted, StepCompleted time.Time
	// Excerpt, after Excerpts, is the failed step's last log lines: the
	// workflow's own text, cleaned.
	Excerpt []string
}

func (j FailedJob) String() string {
	verb := "failed"
	if j.Conclusion != "" && j.Conclusion != "failure" {
		verb = j.Conclusion
	}
	if j.Step != "" {
		return fmt.Sprintf("job %q %s at step %d %q: %s", j.Name, verb, j.StepNumber, j.Step, j.URL)
	}
	return fmt.Sprintf("job %q %s: %s", j.Name, verb, j.URL)
}

// Diagnose names the failed and cancelled jobs of st's run (latest
// attempt) in st, with one request. It is best-effort: a failing listing
// leaves st as it was and is returned for logging only.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-jobs#list-jobs-for-a-workflow-run
func (c *Checker) Diagnose(ctx context.Context, client *ghclient.Client, st *Status) error {
	jobs, _, err := client.Actions.ListWorkflowJobs(ctx, url.PathEscape(client.Repo.Owner), url.PathEscape(client.Repo.Name), st.RunID,
		&github.ListWorkflowJobsOptions{Filter: "latest", ListOptions: github.ListOptions{PerPage: jobsPerPage}})
	if err != nil {
		return ghclient.Classify(err, fmt.Sprintf("listing the jobs of run %d", st.RunID), ghclient.Hints{})
	}
	var failed []FailedJob
	for _, j := range jobs.Jobs {
		switch j.GetConclusion() {
		case "failure", "cancelled", "timed_out":
		default:
			continue
		}
		fj := FailedJob{Name: short(j.GetName()), Conclusion: j.GetConclusion(), URL: jobURL(client, st.RunID, j), ID: j.GetID()}
		for _, s := range j.Steps {
			if c := s.GetConclusion(); c == "failure" || c == "timed_out" || c == "cancelled" {
				fj.StepNumber, fj.Step = s.GetNumber(), short(s.GetName())
				fj.StepStarted, fj.StepCompleted = s.GetStartedAt().Time, s.GetCompletedAt().Time
				break
			}
		}
		failed = append(failed, fj)
	}
	// Failures first: a cancelled job is often only a consequence.
	sortFailuresFirst(failed)
	if len(failed) > maxNamedJobs {
		st.MoreFailed = len(failed) - maxNamedJobs
		failed = failed[:maxNamedJobs]
	}
	st.FailedJobs = failed
	return nil
}

// PendingEnvironments describes what a waiting run waits on: the
// environments whose protection rules hold it, and their reviewers.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-runs#get-pending-deployments-for-a-workflow-run
func (c *Checker) PendingEnvironments(ctx context.Context, client *ghclient.Client, runID int64) (string, error) {
	pending, _, err := client.Actions.GetPendingDeployments(ctx, url.PathEscape(client.Repo.Owner), url.PathEscape(client.Repo.Name), runID)
	if err != nil {
		return "", failure.Transient(ghclient.Classify(err, fmt.Sprintf("reading the pending deployments of run %d", runID), ghclient.Hints{}))
	}
	var parts []string
	for _, p := range pending {
		env := short(p.GetEnvironment().GetName())
		var reviewers []string
		for _, r := range p.Reviewers {
			switch rev := r.Reviewer.(type) {
			case *github.User:
				reviewers = append(reviewers, short(rev.GetLogin()))
			case *github.Team:
				reviewers = append(reviewers, short(rev.GetSlug()))
			}
		}
		s := "approval of environment " + env
		if len(reviewers) > 0 {
			s += " (reviewers: " + strings.Join(reviewers, ", ") + ")"
		} else if p.GetWaitTimer() > 0 {
			s = fmt.Sprintf("the %d-minute wait timer of environment %s", p.GetWaitTimer(), env)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "", nil
	}
	return "waiting for " + strings.Join(parts, " and "), nil
}

// jobURL is the job's web page; a URL the server gave for another host is
// replaced by the one built from the repository.
func jobURL(client *ghclient.Client, runID int64, j *github.WorkflowJob) string {
	web := client.Repo.WebURL()
	if u := j.GetHTMLURL(); ghclient.UnderBase(u, web) {
		return u
	}
	return fmt.Sprintf("%s/actions/runs/%d/job/%d", web, runID, j.GetID())
}

func short(s string) string {
	s = safetext.Clean(s)
	if len(s) > maxTextLen {
		s = s[:maxTextLen] + "…"
	}
	return s
}

func sortFailuresFirst(jobs []FailedJob) {
	i := 0
	for k, j := range jobs {
		if j.Conclusion == "failure" {
			jobs[i], jobs[k] = jobs[k], jobs[i]
			i++
		}
	}
}

// checkRun refuses a run object that is not the one asked for, or whose
// URL points away from the repository: a server's answer is checked before
// it is believed.
func checkRun(client *ghclient.Client, run *github.WorkflowRun, runID int64) error {
	if run.GetID() != runID {
		return failure.Final(fmt.Errorf("the server answered run %d for run %d", run.GetID(), runID))
	}
	if r := run.GetRepository(); r != nil && !strings.EqualFold(r.GetFullName(), client.Repo.FullName()) {
		return failure.Final(fmt.Errorf("the server answered a run of %s for %s", safetext.Clean(r.GetFullName()), client.Repo.FullName()))
	}
	if u := run.GetHTMLURL(); u != "" && !ghclient.UnderBase(u, client.Repo.WebURL()) {
		run.HTMLURL = github.Ptr(fmt.Sprintf("%s/actions/runs/%d", client.Repo.WebURL(), runID))
	}
	return nil
}
