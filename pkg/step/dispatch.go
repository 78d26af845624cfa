package step

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/config"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
)

const (
	// intentRetry is the pause after recording a dispatch's intent, before
	// sending it; Kargo stretches it to its 10 s minimum.
	intentRetry = time.Second
	// maxSendBackoff caps the pause between tries of a dispatch that
	// provably never reached GitHub.
	maxSendBackoff = 30 * time.Second
)

// Dispatch runs gha-dispatch-workflow, one piece per call:
//
//  1. record the intent (a new attempt; with SavesState the call returns
//     here, so the intent is saved before anything is sent);
//  2. send the dispatch, once: a request GitHub may have acted on is never
//     sent again;
//  3. find the run GitHub created, one listing per call, within timeout.
//
// Its output is runID (int64), htmlURL, runURL and, with correlationInput,
// correlationKey. It is idempotent within a promotion: once its output holds
// a runID it returns that run and does nothing else.
func (r *Runner) Dispatch(ctx context.Context, sc *Context) (Result, error) {
	prev := ownOutput(sc)
	if prev != nil && prev[outRunID] != nil {
		if id, err := config.ParseRunID(prev[outRunID]); err == nil {
			out := map[string]any{outRunID: id}
			for _, k := range []string{outHTMLURL, outRunURL, outCorrelationKey} {
				if s, ok := prev[k].(string); ok && s != "" {
					out[k] = s
				}
			}
			return Result{Status: StatusSucceeded, Message: fmt.Sprintf("run %d was dispatched earlier in this promotion; not dispatching again", id), Output: out}, nil
		}
	}
	cfg, err := config.ParseDispatch(sc.Config, r.URLOptions)
	if err != nil {
		return failed(err, prev)
	}
	t, err := r.target(ctx, sc, cfg.Repo, cfg.RepoURL, cfg.Legacy, cfg.InsecureSkipTLSVerify)
	if err != nil {
		return errored(err, prev)
	}
	d := &dispatchCall{r: r, sc: sc, cfg: cfg, t: t, req: dispatch.Request{
		WorkflowFile: cfg.WorkflowFile, Ref: cfg.Ref, Inputs: cfg.Inputs, CorrelationInput: cfg.CorrelationInput,
	}}
	return d.run(ctx, decodeDispatchState(prev[outDispatch]))
}

// dispatchCall is one call of the dispatch step.
type dispatchCall struct {
	r   *Runner
	sc  *Context
	cfg *config.Dispatch
	t   *target
	req dispatch.Request
}

func (d *dispatchCall) run(ctx context.Context, st *dispatchState) (Result, error) {
	disp := d.r.Dispatcher
	if d.sc.Logf != nil {
		ctx = dispatch.ContextWithLogf(ctx, d.sc.logf)
	}
	if st == nil {
		st = &dispatchState{attempt: disp.NewAttempt(d.key())}
		if d.sc.SavesState {
			return running(fmt.Sprintf("dispatching %s on %s in %s", d.cfg.WorkflowFile, d.cfg.Ref, d.t.client.Repo.WebURL()), d.output(st), intentRetry), nil
		}
	}
	a := st.attempt
	if !a.MaybeSent && !disp.CanSend(a) {
		// Recorded by a process that is gone: it may have sent the
		// dispatch before it died. Only looking for the run is safe.
		a.MaybeSent = true
		d.sc.logf("resuming the dispatch of %s recorded at %s by an earlier process: looking for its run, not dispatching again", d.cfg.WorkflowFile, stamp(a.IntentAt))
	}
	if !a.MaybeSent {
		return d.send(ctx, st)
	}
	return d.find(ctx, st)
}

// key is the correlation key of a new attempt: the caller's, else one
// derived from the promotion and the step's alias (so that a controller
// that restarts finds the same run again), else a random one.
func (d *dispatchCall) key() string {
	switch {
	case d.cfg.CorrelationInput == "":
		return ""
	case d.sc.CorrelationKey != "":
		return d.sc.CorrelationKey
	case d.sc.Promotion != "" && d.sc.Alias != "":
		h := sha256.Sum256([]byte(d.sc.Project + "\x00" + d.sc.Promotion + "\x00" + d.sc.Alias))
		return "kgha-" + hex.EncodeToString(h[:10])
	}
	return dispatch.RandomKey()
}

func (d *dispatchCall) send(ctx context.Context, st *dispatchState) (Result, error) {
	a := st.attempt
	cctx, cancel := d.r.call(ctx)
	defer cancel()
	d.sc.logf("dispatching %s on %s in %s (credentials: %s)", d.cfg.WorkflowFile, d.cfg.Ref, d.t.client.Repo.WebURL(), d.t.creds.Source)
	err := d.r.Dispatcher.Send(cctx, d.t.client, d.req, a)
	switch {
	case a.Run != nil:
		return d.succeeded(a.Run, a.Key)
	case err == nil:
		d.sc.logf("GitHub accepted the dispatch without naming the run; looking for it (up to %s)", d.cfg.Timeout)
		return running(fmt.Sprintf("dispatched %s on %s; looking for its run", d.cfg.WorkflowFile, d.cfg.Ref), d.output(st), dispatch.FindInterval(0)), nil
	case a.MaybeSent:
		d.sc.logf("%v", err)
		return running(err.Error(), d.output(st), dispatch.FindInterval(0)), nil
	}
	// Nothing reached GitHub, or GitHub refused without acting.
	if failure.IsFinal(err) && !ghclient.RateLimited(err) {
		return failed(err, nil)
	}
	st.sendFailures++
	wait, limited := ghclient.RetryAfter(err)
	if !limited {
		wait = min(time.Duration(1<<min(st.sendFailures, 5))*time.Second, maxSendBackoff)
	}
	if time.Now().Add(wait).After(a.IntentAt.Add(d.cfg.Timeout)) {
		return errored(failure.Transient(fmt.Errorf("%w; nothing was dispatched, so retrying is safe", err)), nil)
	}
	d.sc.logf("%v; nothing was dispatched; trying again in %s", err, wait.Round(time.Second))
	return running(fmt.Sprintf("%v; nothing was dispatched; trying again in %s", err, wait.Round(time.Second)), d.output(st), wait), nil
}

func (d *dispatchCall) find(ctx context.Context, st *dispatchState) (Result, error) {
	a := st.attempt
	c := d.t.client
	cctx, cancel := d.r.call(ctx)
	defer cancel()
	res, err := d.r.Dispatcher.Find(cctx, c, d.req, a)
	var amb *dispatch.AmbiguousError
	switch {
	case res != nil:
		return d.succeeded(res, a.Key)
	case errors.As(err, &amb):
		return failed(err, d.output(st))
	case err != nil && failure.IsFinal(err) && !ghclient.RateLimited(err):
		return failed(fmt.Errorf("the workflow was dispatched, but its run cannot be looked up: %w; %s", err, dispatch.MayExist(c, d.req, a)), d.output(st))
	}
	pause, giveUp := dispatch.NextFind(a, d.cfg.Timeout, err)
	if giveUp {
		return failed(d.r.Dispatcher.NotFound(c, d.req, a, d.cfg.Timeout, err), d.output(st))
	}
	msg := fmt.Sprintf("dispatched %s on %s at %s; looking for its run", d.cfg.WorkflowFile, d.cfg.Ref, stamp(a.Start()))
	if err != nil {
		msg += " (last listing: " + ghclient.Describe(err) + ")"
	}
	return running(msg, d.output(st), pause), nil
}

func (d *dispatchCall) succeeded(res *dispatch.Result, key string) (Result, error) {
	out := map[string]any{outRunID: res.RunID, outHTMLURL: res.HTMLURL, outRunURL: res.RunURL}
	if key != "" {
		out[outCorrelationKey] = key
	}
	msg := fmt.Sprintf("dispatched %s on %s: run %d %s", d.cfg.WorkflowFile, d.cfg.Ref, res.RunID, res.HTMLURL)
	return Result{Status: StatusSucceeded, Message: d.t.withWarning(msg), Output: out}, nil
}

// output is the Running output: the dispatch's state, and the correlation
// key for people and later steps.
func (d *dispatchCall) output(st *dispatchState) map[string]any {
	st.runsPage = dispatch.RunsPage(d.t.client, d.cfg.WorkflowFile)
	out := map[string]any{outDispatch: st.encode()}
	if st.attempt.Key != "" {
		out[outCorrelationKey] = st.attempt.Key
	}
	return out
}

// DispatchStopped is the error of a dispatch whose caller stopped calling
// it (a signal, a deadline) while it was Running with output out: what may
// exist and where to look, or, when nothing left, that retrying is safe.
func DispatchStopped(out map[string]any, cause error) error {
	st := decodeDispatchState(out[outDispatch])
	if st == nil || !st.attempt.MaybeSent {
		return failure.Transient(fmt.Errorf("stopped (%v) before anything was dispatched", cause))
	}
	a := st.attempt
	msg := fmt.Sprintf("stopped (%v) after the dispatch was sent at %s, before its run was found; a run may exist: check %s for runs created since then",
		cause, stamp(a.Start()), st.runsPage)
	if a.Key != "" {
		msg += " (its title carries " + a.Key + ")"
	}
	return failure.Final(errors.New(msg + " before dispatching again"))
}
