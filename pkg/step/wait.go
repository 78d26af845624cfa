package step

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/config"
	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

const (
	// DefaultOutageBudget is how long the wait step rides out GitHub
	// failing (5xx, resets, rate limits) before it gives up on the run: long
	// enough for GitHub's usual incidents, short enough that a promotion
	// does not wait blind for hours.
	DefaultOutageBudget = 15 * time.Minute
	// DefaultNotFoundGrace is how long a run the step has never seen may
	// answer 404: GitHub can name a run in its dispatch answer a moment
	// before the run can be read.
	DefaultNotFoundGrace = 30 * time.Second
	// maxOutageBackoff caps the pause between checks during an outage.
	maxOutageBackoff = time.Minute
)

// Wait runs gha-wait-for-workflow: one check of the run per call. While it
// runs, the step is Running and asks to be called again after pollInterval
// (without one, RetryAfter is nil and Kargo's default interval applies). A
// completed run ends it: Succeeded, or Failed (final) when the conclusion
// is not the expected one, naming the failed jobs and steps. GitHub failing
// meanwhile keeps it Running, with a backed-off RetryAfter, for up to the
// outage budget.
//
// Output: conclusion, htmlURL, runAttempt (int64), runID (int64), and on a
// mismatch failedJobs (a list of {name, url, step, stepNumber, conclusion}).
func (r *Runner) Wait(ctx context.Context, sc *Context) (Result, error) {
	prev := ownOutput(sc)
	cfg, err := config.ParseWait(sc.Config, r.URLOptions)
	if err != nil {
		return failed(err, prev)
	}
	t, err := r.target(ctx, sc, cfg.Repo, cfg.RepoURL, cfg.Legacy, cfg.InsecureSkipTLSVerify)
	if err != nil {
		return errored(err, prev)
	}
	w := &waitCall{r: r, sc: sc, cfg: cfg, t: t, st: decodeWaitState(prev[outWait])}
	return w.run(ctx)
}

type waitCall struct {
	r   *Runner
	sc  *Context
	cfg *config.Wait
	t   *target
	st  *waitState
}

func (w *waitCall) run(ctx context.Context) (Result, error) {
	if w.st.firstCheck.IsZero() {
		w.st.firstCheck = time.Now()
	}
	cctx, cancel := w.r.call(ctx)
	defer cancel()
	c := w.t.client
	st, err := w.r.Checker.Check(cctx, c, w.cfg.RunID, w.cfg.ExpectedConclusion)
	if err != nil {
		return w.checkFailed(err)
	}
	w.st.seen, w.st.outageSince, w.st.failures = true, time.Time{}, 0
	switch st.Outcome {
	case wait.Running:
		return w.stillRunning(cctx, st), nil
	case wait.Mismatched:
		w.r.Checker.Forget(c, w.cfg.RunID)
		if derr := w.r.Checker.Diagnose(cctx, c, st); derr != nil {
			w.sc.logf("could not list the jobs of run %d: %v", st.RunID, derr)
		}
		return failed(st.Err(), w.finalOutput(st))
	}
	w.r.Checker.Forget(c, w.cfg.RunID)
	msg := fmt.Sprintf("run %d completed with conclusion %s: %s", st.RunID, st.Conclusion, st.HTMLURL)
	return Result{Status: StatusSucceeded, Message: w.t.withWarning(msg), Output: w.finalOutput(st)}, nil
}

// stillRunning reports a run that has not completed. A run that waits for
// a deployment environment says which, asking GitHub once per change of
// status.
func (w *waitCall) stillRunning(ctx context.Context, st *wait.Status) Result {
	if st.Status == "waiting" && w.st.lastStatus != "waiting" {
		pending, err := w.r.Checker.PendingEnvironments(ctx, w.t.client, st.RunID)
		if err != nil {
			w.sc.logf("could not read what run %d waits for: %v", st.RunID, err)
		}
		w.st.pending = pending
	}
	if st.Status != "waiting" {
		w.st.pending = ""
	}
	w.st.lastStatus = st.Status
	msg := fmt.Sprintf("run %d is %s: %s", st.RunID, st.Status, st.HTMLURL)
	if w.st.pending != "" {
		msg = fmt.Sprintf("run %d is %s, %s: %s", st.RunID, st.Status, w.st.pending, st.HTMLURL)
	}
	res := Result{Status: StatusRunning, Message: w.t.withWarning(msg), Output: w.output()}
	if w.cfg.PollInterval > 0 {
		d := w.cfg.PollInterval
		res.RetryAfter = &d
	}
	return res
}

// checkFailed decides what a failed check means. A run that is really gone
// (a 404 after it was seen, or past the grace for a new run) and refused
// credentials end the step; GitHub failing keeps it Running, backed off,
// within the outage budget: the run goes on meanwhile.
func (w *waitCall) checkFailed(err error) (Result, error) {
	notFound := ghclient.StatusCode(err) == http.StatusNotFound
	grace := w.r.NotFoundGrace
	if grace <= 0 {
		grace = DefaultNotFoundGrace
	}
	young := !w.st.seen && time.Since(w.st.firstCheck) < grace
	switch {
	case notFound && young:
	case ghclient.RateLimited(err):
	case failure.IsFinal(err):
		return errored(err, w.output())
	}
	now := time.Now()
	if w.st.outageSince.IsZero() {
		w.st.outageSince = now
	}
	w.st.failures++
	budget := w.r.OutageBudget
	if budget <= 0 {
		budget = DefaultOutageBudget
	}
	if now.Sub(w.st.outageSince) > budget {
		return errored(failure.Final(fmt.Errorf("GitHub has failed every check of run %d for %s (%d checks; outage budget %s): %w; the run may still be going: %s",
			w.cfg.RunID, now.Sub(w.st.outageSince).Round(time.Second), w.st.failures, budget, err, w.runPage())), w.output())
	}
	pause := min(time.Duration(1<<min(w.st.failures-1, 6))*time.Second, maxOutageBackoff)
	if ra, ok := ghclient.RetryAfter(err); ok {
		pause = max(pause, ra)
	}
	what := "GitHub failed to answer"
	switch {
	case notFound:
		what = "the run is not readable yet"
	case ghclient.RateLimited(err):
		what = "GitHub's rate limit holds the checks back"
	}
	msg := fmt.Sprintf("%s (%s); checking run %d again in %s; the run goes on", what, ghclient.Describe(err), w.cfg.RunID, pause.Round(time.Second))
	w.sc.logf("%s", msg)
	return running(msg, w.output(), pause), nil
}

func (w *waitCall) runPage() string {
	return fmt.Sprintf("%s/actions/runs/%d", w.t.client.Repo.WebURL(), w.cfg.RunID)
}

func (w *waitCall) output() map[string]any {
	return map[string]any{outWait: w.st.encode()}
}

// finalOutput is what a completed run leaves for later steps and people.
func (w *waitCall) finalOutput(st *wait.Status) map[string]any {
	out := map[string]any{
		outRunID:      st.RunID,
		outConclusion: st.Conclusion,
		outHTMLURL:    st.HTMLURL,
		outRunAttempt: st.RunAttempt,
	}
	if len(st.FailedJobs) > 0 {
		jobs := make([]any, len(st.FailedJobs))
		for i, j := range st.FailedJobs {
			m := map[string]any{"name": j.Name, "url": j.URL, "conclusion": j.Conclusion}
			if j.Step != "" {
				m["step"] = j.Step
				m["stepNumber"] = j.StepNumber
			}
			jobs[i] = m
		}
		out[outFailedJobs] = jobs
	}
	return out
}
