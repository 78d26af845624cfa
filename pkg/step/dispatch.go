package step

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
)

// intentRetry is the pause after recording a dispatch's intent, before
// sending it; Kargo stretches it to its 10 s minimum.
const intentRetry = time.Second

// dispatchStep runs gha-dispatch-workflow (Runner.Dispatch), one piece
// per call: it records the dispatch's intent (with SavesState the call returns there, so that the
// intent is saved before anything is sent), then advances the dispatch's
// state (pkg/dispatch) one round trip per call until its run is known.
//
// Its output is runID (int64), htmlURL, runURL, attribution (how the run
// was found), links (links.go), headSHA and headBranch when known (see
// commit.go, which also checks expectedHeadSHA) and, with
// correlationInput, correlationKey. It is idempotent
// within a promotion: once its output holds a runID it returns that run and
// does nothing else; a saved state it cannot read is a terminal error,
// never a fresh dispatch.
func (r *Runner) dispatchStep(ctx context.Context, sc *Context) (Result, error) {
	prev := ownOutput(sc)
	if res, ok := earlierRun(prev); ok {
		return res, nil
	}
	cfg, err := config.ParseDispatch(sc.Config, r.URLOptions)
	if err != nil {
		return failed(err, prev)
	}
	t, err := r.target(ctx, sc, cfg.Repo, cfg.RepoURL, cfg.Legacy, cfg.InsecureSkipTLSVerify)
	if err != nil {
		return errored(err, prev)
	}
	var st *dispatch.State
	if len(prev) > 0 {
		s, err := dispatch.Decode(prev[outDispatch])
		var se *dispatch.StateError
		if errors.As(err, &se) {
			if se.RunsPage == "" {
				se.RunsPage = dispatch.RunsPage(t.client, cfg.WorkflowFile)
			}
			return failed(se, prev) // kept as it was, for whoever looks
		}
		st = s
	}
	if err := cachedRunNameProblem(t.client, cfg); st == nil && err != nil {
		return failed(err, prev)
	}
	d := &dispatchCall{r: r, sc: sc, cfg: cfg, t: t, req: dispatch.Request{
		WorkflowFile: cfg.WorkflowFile, Ref: cfg.Ref, Inputs: cfg.Inputs, CorrelationInput: cfg.CorrelationInput, Timeout: cfg.Timeout, Settle: sc.Settle,
	}}
	return d.run(ctx, st)
}

// earlierRun is the result of a dispatch whose output already names its run.
func earlierRun(prev map[string]any) (Result, bool) {
	if prev == nil || prev[outRunID] == nil {
		return Result{}, false
	}
	id, err := config.ParseRunID(prev[outRunID])
	if err != nil {
		return Result{}, false
	}
	out := map[string]any{outRunID: id}
	for _, k := range []string{outHTMLURL, outRunURL, outCorrelationKey, outAttribution, outHeadSHA, outHeadBranch} {
		if s, ok := prev[k].(string); ok && s != "" {
			out[k] = s
		}
	}
	if l, ok := prev[outLinks].([]any); ok {
		out[outLinks] = l
	}
	return succeeded(fmt.Sprintf("run %d was dispatched earlier in this promotion; not dispatching again", id), out), true
}

// dispatchCall is one call of the dispatch step.
type dispatchCall struct {
	r   *Runner
	sc  *Context
	cfg *config.Dispatch
	t   *target
	req dispatch.Request
}

func (d *dispatchCall) run(ctx context.Context, st *dispatch.State) (Result, error) {
	disp := d.r.Dispatcher
	if st == nil {
		key, given := d.key()
		st = disp.Record(d.req, key, given)
		d.sc.log(slog.LevelInfo, fmt.Sprintf("dispatching %s on %s in %s (credentials: %s)", d.cfg.WorkflowFile, d.cfg.Ref, d.t.client.Repo.WebURL(), d.t.creds.Source),
			d.facts(st)...)
		if d.sc.SavesState && st.Key == "" {
			return running(fmt.Sprintf("dispatching %s on %s in %s", d.cfg.WorkflowFile, d.cfg.Ref, d.t.client.Repo.WebURL()), d.output(st), intentRetry), nil
		}
		// With a key, this first call also looks for an earlier run that
		// carries it (sending nothing), then returns to save the intent.
	}
	foundBefore := st.Phase == dispatch.PhaseFound // then Advance sends nothing
	cctx, cancel := d.r.call(ctx)
	defer cancel()
	step, err := disp.Advance(cctx, d.t.client, d.req, st)
	if st.Phase == dispatch.PhaseFound {
		return d.checkCommit(ctx, st, step.Message, foundBefore)
	}
	if ctx.Err() != nil {
		// The caller is stopping (a controller shutting down, a signal):
		// not a failure of the dispatch; its state is kept for the next call.
		return running(fmt.Sprintf("stopped (%v), state kept; %s", context.Cause(ctx), step.Message), d.output(st), intentRetry), nil
	}
	if err != nil {
		return d.ended(st, err)
	}
	if step.Message != "" {
		d.sc.log(slog.LevelInfo, step.Message, d.facts(st)...)
	}
	return running(step.Message, d.output(st), max(step.Wait, minRetry)), nil
}

// facts are the dispatch's attributes in its log lines.
func (d *dispatchCall) facts(st *dispatch.State) []any {
	return []any{"repo", d.t.client.Repo.FullName(), "workflow", d.cfg.WorkflowFile, "ref", d.cfg.Ref,
		"attempt", st.Attempt, "phase", string(st.Phase)}
}

// minRetry: a step asks to be called again no sooner than this.
const minRetry = 100 * time.Millisecond

// ended reports a dispatch that stopped without a run.
func (d *dispatchCall) ended(st *dispatch.State, err error) (Result, error) {
	var derr *dispatch.Error
	switch {
	case errors.As(err, &derr) && derr.MayExist:
		return failed(err, d.output(st)) // says what may exist and where
	case errors.As(err, &derr):
		return failed(err, nil) // nothing was sent
	}
	// Nothing was sent, and the dispatch's time is up: retrying is safe.
	return errored(err, nil)
}

// key is the correlation key of a new dispatch and whether the caller chose
// it: the caller's, else one derived from the promotion and the step's
// alias (unique to them, so that a restarted controller finds the same run
// again), else a random one.
func (d *dispatchCall) key() (string, bool) {
	switch {
	case d.cfg.CorrelationInput == "":
		return "", false
	case d.sc.CorrelationKey != "":
		return d.sc.CorrelationKey, true
	case d.sc.Promotion != "" && d.sc.Alias != "":
		return dispatch.KeyFromSeed(d.sc.Project + "\x00" + d.sc.Promotion + "\x00" + d.sc.Alias), false
	}
	return "", false
}

func (d *dispatchCall) succeeded(st *dispatch.State, note string) (Result, error) {
	run := st.Run
	out := map[string]any{outRunID: run.ID, outHTMLURL: run.HTMLURL, outRunURL: run.URL, outAttribution: string(run.Method)}
	if st.Key != "" {
		out[outCorrelationKey] = st.Key
	}
	d.withRun(out, run)
	msg := fmt.Sprintf("dispatched %s on %s: run %d %s (%s)", d.cfg.WorkflowFile, d.cfg.Ref, run.ID, run.HTMLURL, attributionNote(run.Method, d.r.Dispatcher.SettleOf(d.req)))
	if run.Method == dispatch.ByEarlierDispatch {
		msg = fmt.Sprintf("run %d %s already carries key %s: the same key is the same dispatch, so nothing was dispatched", run.ID, run.HTMLURL, st.Key)
	}
	if note != "" {
		msg += "; " + note
	}
	return succeeded(d.t.withWarning(msg), out), nil
}

// attributionNote says how the run was found and, for a listing, what that
// assumed.
func attributionNote(m dispatch.Method, settle time.Duration) string {
	switch m {
	case dispatch.ByRunDetails:
		return "named by GitHub in its answer"
	case dispatch.ByCorrelationKey:
		return "found by its correlation key"
	}
	return fmt.Sprintf("found by listing: the only new run of the workflow and ref within %s of the dispatch, assuming no other dispatcher with these credentials dispatched it meanwhile; set correlationInput for exact attribution", settle)
}

// output is the Running output: the dispatch's state, and the correlation
// key for people and later steps.
func (d *dispatchCall) output(st *dispatch.State) map[string]any {
	st.Failure = safetext.Clean(st.Failure)
	out := map[string]any{outDispatch: st.Encode()}
	if st.Key != "" {
		out[outCorrelationKey] = st.Key
	}
	return out
}

// DispatchStopped is the error of a dispatch whose caller stopped calling
// it (a signal, a deadline) while it was Running with output out: what may
// exist and where to look, or, when nothing left, that retrying is safe.
func DispatchStopped(out map[string]any, cause error) error {
	st, err := dispatch.Decode(out[outDispatch])
	if err != nil {
		return failure.Transient(fmt.Errorf("stopped (%v) before anything was dispatched", cause))
	}
	serr := dispatch.Stopped(st, cause)
	var se *dispatch.StoppedError
	if errors.As(serr, &se) && se.MayExist {
		return failure.Final(serr)
	}
	return failure.Transient(serr)
}
