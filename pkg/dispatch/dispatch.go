package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
)

// DefaultRunTimeout is how long Dispatch looks for the run when GitHub does
// not name it, unless told otherwise (the step reference's default).
const DefaultRunTimeout = 60 * time.Second

// SendBudget bounds how long Dispatch tries to send a dispatch that has
// not left yet: rate limits, connections refused, this process's earlier
// dispatches of the same workflow and ref.
const SendBudget = 5 * time.Minute

// maxUnreachableTries bounds Dispatch's tries of a server it cannot reach.
const maxUnreachableTries = 4

// Dispatch sends one dispatch and waits for its run, for callers that can
// block (a library user, a command): it loops over Send and Find, pausing
// between listings. key is the correlation key ("" for a fresh one when
// req.CorrelationInput is set). timeout bounds the search for the run after
// the dispatch was sent; sending it (waiting out rate limits, or for this
// process's earlier dispatches of the same workflow and ref) is bounded by
// ctx and SendBudget.
//
// Callers that must not block, or must survive a restart between sending
// and finding, use NewAttempt, Send and Find themselves and keep the
// Attempt.
func (d *Dispatcher) Dispatch(ctx context.Context, c *ghclient.Client, req Request, key string, timeout time.Duration) (*Result, error) {
	if req.CorrelationInput != "" && key == "" {
		key = RandomKey()
	}
	if timeout <= 0 {
		timeout = DefaultRunTimeout
	}
	a := d.NewAttempt(key)
	for tries := 1; ; tries++ {
		err := d.Send(ctx, c, req, a)
		if err == nil || a.MaybeSent {
			break
		}
		if failure.IsFinal(err) && !ghclient.RateLimited(err) {
			return nil, err
		}
		// Nothing was sent: try again, waiting out rate limits and holds;
		// a server that cannot be reached gets a few tries only.
		pause, ok := ghclient.RetryAfter(err)
		if !ok {
			if tries >= maxUnreachableTries {
				return nil, err
			}
			pause = time.Duration(tries) * 500 * time.Millisecond
		}
		if time.Now().Add(pause).After(a.IntentAt.Add(SendBudget)) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, failure.Transient(fmt.Errorf("stopped before the dispatch was sent (%v); nothing was dispatched", context.Cause(ctx)))
		case <-time.After(pause):
		}
	}
	return d.Await(ctx, c, req, a, timeout)
}

// Await calls Find until the run of a sent attempt appears, the timeout
// (counted from the send) passes, or ctx ends. Every error names what may
// exist and where to look: the dispatch was sent.
func (d *Dispatcher) Await(ctx context.Context, c *ghclient.Client, req Request, a *Attempt, timeout time.Duration) (*Result, error) {
	var lastErr error
	for {
		res, err := d.Find(ctx, c, req, a)
		var amb *AmbiguousError
		switch {
		case res != nil:
			return res, nil
		case errors.As(err, &amb):
			return nil, err // names the runs and where to look
		case err != nil && failure.IsFinal(err) && !ghclient.RateLimited(err):
			return nil, failure.Final(fmt.Errorf("%w; the dispatch was sent at %s: %s", err, a.SentAt.UTC().Format(time.RFC3339), MayExist(c, req, a)))
		case err != nil:
			lastErr = err
		}
		pause, giveUp := NextFind(a, timeout, err)
		if giveUp {
			return nil, d.NotFound(c, req, a, timeout, lastErr)
		}
		select {
		case <-ctx.Done():
			return nil, failure.Final(fmt.Errorf("stopped looking for the run (%v): %s", context.Cause(ctx), MayExist(c, req, a)))
		case <-time.After(pause):
		}
	}
}

// NextFind says when to call Find again for an attempt whose run has not
// been found, given the last call's error (or nil): after pause, or not at
// all (giveUp) once the timeout, counted from a.Start, has passed or a rate
// limit outlasts it. The last look falls on the deadline itself.
func NextFind(a *Attempt, timeout time.Duration, err error) (pause time.Duration, giveUp bool) {
	start := a.Start()
	deadline := start.Add(timeout)
	pause = FindInterval(time.Since(start))
	if w, ok := ghclient.RetryAfter(err); ok {
		pause = max(w, pause)
	}
	now := time.Now()
	switch {
	case now.After(deadline), ghclient.RateLimited(err) && now.Add(pause).After(deadline):
		return 0, true
	case now.Add(pause).After(deadline):
		return deadline.Sub(now) + 10*time.Millisecond, false
	}
	return pause, false
}

// NotFound is the error of an attempt whose run did not appear in time.
func (d *Dispatcher) NotFound(c *ghclient.Client, req Request, a *Attempt, timeout time.Duration, lastErr error) error {
	msg := fmt.Sprintf("GitHub accepted the dispatch of %s on %s, but its run did not appear within %s", req.WorkflowFile, req.Ref, timeout)
	if a.Key != "" {
		msg = fmt.Sprintf("%s: no run whose title carries %s; the workflow's run-name must contain ${{ inputs.%s }} (see README, correlationInput)", msg, a.Key, req.CorrelationInput)
	}
	if !a.MaybeSent {
		msg = fmt.Sprintf("the dispatch of %s on %s may have been sent before a restart, and no run of it appeared within %s", req.WorkflowFile, req.Ref, timeout)
	}
	if lastErr != nil {
		msg += "; last listing error: " + lastErr.Error()
	}
	return failure.Final(errors.New(msg + "; " + MayExist(c, req, a)))
}

// MayExist says what may exist after a dispatch whose run is not known, and
// where to look, for every message that ends such an attempt.
func MayExist(c *ghclient.Client, req Request, a *Attempt) string {
	s := fmt.Sprintf("a run may still start: check %s for runs created since %s", RunsPage(c, req.WorkflowFile), a.Start().UTC().Format(time.RFC3339))
	if a.Key != "" {
		s += fmt.Sprintf(" (its title carries %s)", a.Key)
	}
	return s + " before dispatching again"
}

// FindInterval is the pause between listings while looking for a run: runs
// usually appear within seconds, so look often at first, then back off.
func FindInterval(waited time.Duration) time.Duration {
	switch {
	case waited < 10*time.Second:
		return 500 * time.Millisecond
	case waited < 30*time.Second:
		return time.Second
	default:
		return 2 * time.Second
	}
}
