package dispatch

import (
	"context"
	"fmt"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
)

// Dispatch sends one dispatch and waits for its run, for callers that can
// block (a library user): a loop over Advance, pausing on the Dispatcher's
// clock between calls. key is the correlation key when req.CorrelationInput
// is set ("" for a fresh one). Callers that must not block, or must survive
// a restart, call Record and Advance themselves and keep the State.
func (d *Dispatcher) Dispatch(ctx context.Context, c *ghclient.Client, req Request, key string) (*Run, error) {
	s := d.Record(req, key, key != "")
	for {
		step, err := d.Advance(ctx, c, req, s)
		if err != nil || s.Done() {
			return s.Run, err
		}
		if err := d.clock().Sleep(ctx, step.Wait); err != nil {
			return nil, Stopped(s, err)
		}
	}
}

// Stopped is the error of a dispatch whose caller stopped advancing it
// (a signal, a deadline) before it ended: what may exist and where to look,
// or, when nothing left, that nothing was dispatched. The state is kept as
// it was; a caller that saved it can go on.
func Stopped(s *State, cause error) error {
	if !s.MayHaveSent() {
		return &StoppedError{Cause: cause, msg: fmt.Sprintf("stopped (%v) before anything was dispatched", cause)}
	}
	msg := fmt.Sprintf("stopped (%v) after the dispatch was sent at %s, before its run was found; a run may exist: check %s for runs created since then",
		cause, stamp(s.Start()), s.RunsPage)
	if s.Key != "" {
		msg += " (its title carries " + s.Key + ")"
	}
	if s.Named > 0 {
		msg += fmt.Sprintf("; GitHub named run %d", s.Named)
	}
	return &StoppedError{Cause: cause, MayExist: true, msg: msg + " before dispatching again"}
}

// StoppedError is a dispatch stopped by its caller: not a failure of the
// dispatch, whose state is kept.
type StoppedError struct {
	Cause    error
	MayExist bool
	msg      string
}

func (e *StoppedError) Error() string { return e.msg }
func (e *StoppedError) Unwrap() error { return e.Cause }
