package step

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

const (
	// DefaultOutageBudget is how long the wait step rides out GitHub
	// failing (5xx, resets, rate limits) before it gives up on the run: long
	// enough for GitHub's usual incidents, short enough that a promotion
	// does not wait blind for hours.
	DefaultOutageBudget = 15 * time.Minute
	// DefaultNotFoundGrace is how long a run the step has never seen may
	// answer 404: GitHub can name a run in its dispatch answer a second or
	// two before the run can be read. A 404 that lasts longer is a run ID
	// that does not exist (or that the credentials cannot see).
	DefaultNotFoundGrace = 10 * time.Second
	// notFoundPause is the pause between reads of a run not readable yet,
	// short against GitHub's read lag and the grace.
	notFoundPause = 2 * time.Second
	// maxOutageBackoff caps the pause between checks during an outage.
	maxOutageBackoff = time.Minute
)

// waitStep runs gha-wait-for-workflow (Runner.Wait): one check of the run per call. While it
// runs, the step is Running and asks to be called again after pollInterval
// (without one, RetryAfter is nil and Kargo's default interval applies). A
// completed run ends it: Succeeded, or Failed (final) when the conclusion
// is not the expected one, naming the failed jobs and steps; a run that
// stays completed without a conclusion for wait.ConclusionGrace fails too.
// GitHub failing meanwhile keeps it Running, with a backed-off RetryAfter,
// for up to the outage budget. A call whose context ends is Running with
// its state kept: the caller stopped, the run did not.
//
// Output: conclusion, htmlURL, runAttempt (int64), runID (int64), on a
// mismatch failedJobs (a list of {name, url, step, stepNumber, conclusion})
// and failure (the failed step's last log lines), and with outputsArtifact
// after a success outputs (the keys of the artifact's outputs.json);
// headSHA, headBranch and links (links.go) on every check, Running too.
func (r *Runner) waitStep(ctx context.Context, sc *Context) (Result, error) {
	prev := ownOutput(sc)
	cfg, err := config.ParseWait(sc.Config, r.URLOptions)
	if err != nil {
		return failed(err, prev)
	}
	t, err := r.target(ctx, sc, cfg.Repo, cfg.RepoURL, cfg.Legacy, cfg.InsecureSkipTLSVerify)
	if err != nil && callStopped(ctx, err) {
		return stoppedCall(ctx, err, cfg.RunID, prev), nil
	}
	if err != nil {
		return errored(err, prev)
	}
	w := &waitCall{r: r, clk: clock.Or(r.Clock), sc: sc, cfg: cfg, t: t, st: decodeWaitState(prev[outWait])}
	return w.run(ctx)
}

type waitCall struct {
	r   *Runner
	clk clock.Clock
	sc  *Context
	cfg *config.Wait
	t   *target
	st  *waitState
}

func (w *waitCall) run(ctx context.Context) (Result, error) {
	if w.st.firstCheck.IsZero() {
		w.st.firstCheck = w.clk.Now()
	}
	cctx, cancel := w.r.call(ctx)
	defer cancel()
	c := w.t.client
	st, err := w.r.Checker.Check(cctx, c, w.cfg.RunID, w.cfg.ExpectedConclusion)
	if err != nil && callStopped(ctx, err) {
		return stoppedCall(ctx, err, w.cfg.RunID, w.output()), nil
	}
	if err != nil {
		return w.checkFailed(err)
	}
	w.st.seen, w.st.outageSince, w.st.failures = true, time.Time{}, 0
	w.st.unconcludedSince = st.HoldUnconcluded(w.st.unconcludedSince, w.clk.Now())
	switch st.Outcome {
	case wait.Running:
		return w.stillRunning(cctx, st), nil
	case wait.Mismatched:
		w.r.Checker.Forget(c, w.cfg.RunID)
		if derr := w.r.Checker.Diagnose(cctx, c, st); derr != nil {
			w.sc.log(slog.LevelWarn, fmt.Sprintf("could not list the jobs of run %d: %v", st.RunID, derr), "runID", st.RunID)
		}
		w.excerpts(cctx, st)
		return failed(st.Err(), w.finalOutput(st))
	}
	w.r.Checker.Forget(c, w.cfg.RunID)
	outputs, err := w.runOutputs(cctx, st)
	if err != nil {
		return w.outputsFailed(ctx, err, st)
	}
	msg := fmt.Sprintf("run %d completed with conclusion %s: %s", st.RunID, st.Conclusion, st.HTMLURL)
	return succeeded(w.t.withWarning(msg), withOutputs(w.finalOutput(st), outputs)), nil
}

// callStopped reports a call ended by its caller (a controller shutting
// down, the command line's timeout or interrupt) rather than by GitHub.
// The call's own deadline (CallTimeout) is not the caller stopping: that is
// GitHub being slow.
func callStopped(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled)
}

// stoppedCall is the result of a stopped call: Running with the state
// kept, so that the next call goes on where this one was. Ending the step
// here would fail a promotion whose run is fine.
func stoppedCall(ctx context.Context, err error, runID int64, out map[string]any) Result {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = err
	}
	msg := fmt.Sprintf("stopped, state kept (%v); run %d is checked again on the next call", cause, runID)
	return Result{Status: StatusRunning, Message: safetext.Clean(msg), Output: out}
}

// WaitStopped is the error of a wait whose caller stopped calling the step
// before the run ended (the command line's timeout), from the last result:
// only a run the step has read is said to go on.
//
// A run never read whose every check answered 404 is a run ID that does
// not exist (or that the credentials cannot see), also when the caller
// stopped before the grace ended: final, so that a wrong --run-id is not
// retried as if it might appear. A run never read because GitHub failed
// stays transient.
func WaitStopped(last Result, cause error) error {
	st := decodeWaitState(last.Output[outWait])
	switch {
	case st.seen:
		return failure.Transient(fmt.Errorf("stopped waiting (%v); the run goes on: %s", cause, last.Message))
	case st.outageSince.IsZero() && !st.firstCheck.IsZero() && st.notFound:
		return failure.Final(fmt.Errorf("stopped waiting (%v) with the run not found: every check answered 404 Not Found; check the run ID, and that the credentials can see the repository", cause))
	}
	return failure.Transient(fmt.Errorf("stopped waiting (%v) before the run could be read: %s", cause, last.Message))
}

// stillRunning reports a run that has not completed (or has no conclusion
// yet). A run that waits for a deployment environment says which, asking
// GitHub once per change of status.
func (w *waitCall) stillRunning(ctx context.Context, st *wait.Status) Result {
	if st.Status == "waiting" && w.st.lastStatus != "waiting" {
		pending, err := w.r.Checker.PendingEnvironments(ctx, w.t.client, st.RunID)
		if err != nil {
			w.sc.log(slog.LevelWarn, fmt.Sprintf("could not read what run %d waits for: %v", st.RunID, err), "runID", st.RunID)
		}
		w.st.pending = pending
	}
	if st.Status != "waiting" {
		w.st.pending = ""
	}
	w.st.lastStatus = st.Status
	msg := fmt.Sprintf("run %d is %s: %s", st.RunID, st.Status, st.HTMLURL)
	switch {
	case w.st.pending != "":
		msg = fmt.Sprintf("run %d is %s, %s: %s", st.RunID, st.Status, w.st.pending, st.HTMLURL)
	case st.Unconcluded():
		msg = fmt.Sprintf("run %d is completed without a conclusion yet (it fails without one %s after it completed): %s", st.RunID, wait.ConclusionGrace, st.HTMLURL)
	}
	res := Result{Status: StatusRunning, Message: w.t.withWarning(msg), Output: w.withRun(w.output(), st)}
	if w.cfg.PollInterval > 0 {
		d := w.cfg.PollInterval
		res.RetryAfter = &d
	}
	return res
}

// checkFailed decides what a failed check means. A 404 for a run never
// read is retried for the grace, then means the run ID is wrong; a run
// that is gone after it was read, and refused credentials, end the step;
// GitHub failing keeps it Running, backed off, within the outage budget.
func (w *waitCall) checkFailed(err error) (Result, error) {
	switch {
	case ghclient.StatusCode(err) == http.StatusNotFound && !w.st.seen:
		return w.notReadable(err)
	case ghclient.RateLimited(err):
	case failure.IsFinal(err):
		return errored(err, w.output())
	}
	return w.outage(err)
}

// notReadable handles a 404 for a run the step has never read: GitHub's
// read lag within the grace, a run that does not exist past it.
func (w *waitCall) notReadable(err error) (Result, error) {
	grace := w.r.NotFoundGrace
	if grace <= 0 {
		grace = DefaultNotFoundGrace
	}
	waited := w.clk.Now().Sub(w.st.firstCheck)
	if waited >= grace {
		return errored(failure.Final(fmt.Errorf("%w (404 on every check for %s)", err, waited.Round(time.Second))), w.output())
	}
	w.st.notFound = true
	msg := fmt.Sprintf("run %d is not readable yet (%s); checking again in %s, for up to %s", w.cfg.RunID, ghclient.Describe(err), notFoundPause, grace)
	w.sc.log(slog.LevelInfo, msg, "runID", w.cfg.RunID)
	return running(msg, w.output(), notFoundPause), nil
}

// outage keeps the step Running while GitHub fails, backed off, until the
// outage budget is spent.
func (w *waitCall) outage(err error) (Result, error) {
	lasted, budget, pause := w.failedAgain(&w.st.outageSince, &w.st.failures, err)
	if lasted > budget {
		return errored(failure.Final(fmt.Errorf("GitHub has failed every check of run %d for %s (%d checks; outage budget %s): %w; %s: %s",
			w.cfg.RunID, lasted.Round(time.Second), w.st.failures, budget, err, w.meanwhile("may still be going"), w.runPage())), w.output())
	}
	what := "GitHub failed to answer"
	if ghclient.RateLimited(err) {
		what = "GitHub's rate limit holds the checks back"
	}
	msg := fmt.Sprintf("%s (%s); checking run %d again in %s; %s", what, ghclient.Describe(err), w.cfg.RunID, pause.Round(time.Second), w.meanwhile("goes on"))
	w.sc.log(slog.LevelInfo, msg, "runID", w.cfg.RunID)
	return running(msg, w.output(), pause), nil
}

// failedAgain counts one more failure in a run of them (since, tries: kept
// in the step's state) and tells how long the run has lasted, the outage
// budget it may last, and the backed-off pause before the next try (1 s
// doubling to maxOutageBackoff, at least GitHub's Retry-After).
func (w *waitCall) failedAgain(since *time.Time, tries *int64, err error) (lasted, budget, pause time.Duration) {
	now := w.clk.Now()
	if since.IsZero() {
		*since = now
	}
	*tries++
	budget = w.r.OutageBudget
	if budget <= 0 {
		budget = DefaultOutageBudget
	}
	pause = min(time.Duration(1<<min(*tries-1, 6))*time.Second, maxOutageBackoff)
	if ra, ok := ghclient.RetryAfter(err); ok {
		pause = max(pause, ra)
	}
	return now.Sub(*since), budget, pause
}

// meanwhile is what can be said of the run while GitHub fails: that it
// goes on (or may still be going) only once the step has read it.
func (w *waitCall) meanwhile(doing string) string {
	if w.st.seen {
		return "the run " + doing
	}
	return fmt.Sprintf("run %d has not been read yet", w.cfg.RunID)
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
	if f := failureOutput(st); f != nil {
		out[outFailure] = f
	}
	return w.withRun(out, st)
}

// waitState is the wait step's progress: when it first looked, whether it
// has seen the run, an outage in progress, since when the run shows
// completed without a conclusion, and what it last reported.
type waitState struct {
	firstCheck       time.Time
	seen             bool
	outageSince      time.Time
	failures         int64
	unconcludedSince time.Time
	lastStatus       string
	// pending describes the environments a waiting run waits on.
	pending string
	// outputsSince and outputsTries count failed reads of a succeeded
	// run's outputs (runoutputs.go).
	outputsSince time.Time
	outputsTries int64
	// notFound: the last check of a run never read answered 404.
	notFound bool
}

func (s *waitState) encode() map[string]any {
	m := map[string]any{"firstCheck": stamp(s.firstCheck), "seen": s.seen}
	if !s.outageSince.IsZero() {
		m["outageSince"] = stamp(s.outageSince)
		m["failures"] = s.failures
	}
	if !s.unconcludedSince.IsZero() {
		m["unconcludedSince"] = stamp(s.unconcludedSince)
	}
	if s.lastStatus != "" {
		m["lastStatus"] = s.lastStatus
	}
	if s.pending != "" {
		m["pending"] = s.pending
	}
	if !s.outputsSince.IsZero() {
		m["outputsSince"] = stamp(s.outputsSince)
		m["outputsTries"] = s.outputsTries
	}
	if s.notFound {
		m["notFound"] = true
	}
	return m
}

func decodeWaitState(v any) *waitState {
	s := &waitState{}
	m, ok := v.(map[string]any)
	if !ok {
		return s
	}
	s.firstCheck = unstamp(m["firstCheck"])
	s.seen, _ = m["seen"].(bool)
	s.outageSince = unstamp(m["outageSince"])
	s.failures, _ = config.WholeNumber(m["failures"])
	s.unconcludedSince = unstamp(m["unconcludedSince"])
	s.lastStatus, _ = m["lastStatus"].(string)
	s.pending, _ = m["pending"].(string)
	s.outputsSince = unstamp(m["outputsSince"])
	s.outputsTries, _ = config.WholeNumber(m["outputsTries"])
	s.notFound, _ = m["notFound"].(bool)
	return s
}
