package step

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// The run's commit. workflow_dispatch runs a workflow on a branch or tag,
// at whatever commit it points to when GitHub receives the dispatch; Kargo
// promotes one exact commit (the Freight's), and the branch may have moved
// in between. With expectedHeadSHA the dispatch step compares the run's
// head_sha with it once the run is known to be this dispatch's, and a run
// of another commit is a final failure naming both; with cancelOnMismatch
// that run, and only it, is cancelled, at most once.
//
// Request cost: a run found by listing carries its head_sha in the listing,
// so the check costs nothing. A run GitHub named in its dispatch answer
// (which carries no commit) is read once, in the next call (a call makes at
// most one round trip), and only when expectedHeadSHA is set: without it
// such a dispatch outputs no headSHA (the wait step does, always).

const (
	// commitReadPause is the pause before reading the run's commit again
	// after a read failed: GitHub's replicas can lag behind its answer by a
	// second or two.
	commitReadPause = 2 * time.Second
	// commitReadGrace is how long after the dispatch's timeout the run's
	// commit may stay unreadable before the step gives up on checking it.
	commitReadGrace = 30 * time.Second
)

// checkCommit ends a dispatch whose run is found. mayRead is false when
// this call has made its round trip already.
func (d *dispatchCall) checkCommit(ctx context.Context, st *dispatch.State, note string, mayRead bool) (Result, error) {
	want := d.cfg.ExpectedHeadSHA
	if want == "" {
		return d.succeeded(st, note)
	}
	run := st.Run
	if run.HeadSHA == "" {
		if !mayRead {
			return running(fmt.Sprintf("run %d %s is this dispatch's; reading its commit to check it against expectedHeadSHA %s", run.ID, run.HTMLURL, want), d.output(st), minRetry), nil
		}
		cctx, cancel := d.r.call(ctx)
		defer cancel()
		ws, err := d.r.Checker.Check(cctx, d.t.client, run.ID, "")
		if err != nil {
			return d.commitUnread(ctx, st, err)
		}
		if ws.HeadSHA == "" {
			return failed(fmt.Errorf("GitHub does not say which commit run %d %s builds, so it cannot be checked against expectedHeadSHA %s; check the run before promoting further", run.ID, run.HTMLURL, want), d.output(st))
		}
		run.HeadSHA, run.HeadBranch = ws.HeadSHA, ws.HeadBranch
		mayRead = false
	}
	if equalCommit(run.HeadSHA, want) {
		note = joinNote(note, fmt.Sprintf("it builds commit %s, as expected", want))
		return d.succeeded(st, note)
	}
	return d.mismatched(ctx, st, mayRead)
}

func equalCommit(a, b string) bool {
	return len(a) == len(b) && hexLower(a) == hexLower(b)
}

func hexLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func joinNote(note, more string) string {
	if note == "" {
		return more
	}
	return note + "; " + more
}

// commitUnread handles a failed read of the run's commit: the caller
// stopping keeps the state; GitHub failing, or the run not readable yet, is
// tried again until the dispatch's timeout and a grace have passed; then,
// or when the credentials are refused, the step fails, saying the run
// exists. The dispatch is never sent again: its state stays found.
func (d *dispatchCall) commitUnread(ctx context.Context, st *dispatch.State, err error) (Result, error) {
	run := st.Run
	if callStopped(ctx, err) {
		return running(fmt.Sprintf("stopped (%v), state kept; the commit of run %d is read on the next call", context.Cause(ctx), run.ID), d.output(st), intentRetry), nil
	}
	code := ghclient.StatusCode(err)
	retryable := code == http.StatusNotFound || ghclient.RateLimited(err) || !failure.IsFinal(err)
	deadline := st.Start().Add(d.req.Timeout + commitReadGrace)
	if retryable && clock.Or(d.r.Clock).Now().Before(deadline) {
		return running(fmt.Sprintf("run %d %s was dispatched; its commit could not be read yet (%s): checking again", run.ID, run.HTMLURL, ghclient.Describe(err)), d.output(st), commitReadPause), nil
	}
	return failed(fmt.Errorf("run %d %s was dispatched, but its commit could not be read to check it against expectedHeadSHA %s: %w; check the run before promoting further, and do not dispatch again for this promotion", run.ID, run.HTMLURL, d.cfg.ExpectedHeadSHA, err), d.output(st))
}

// mismatched ends a dispatch whose run builds another commit: a final
// failure naming the run and both commits, after cancelling the run when
// cancelOnMismatch says so.
func (d *dispatchCall) mismatched(ctx context.Context, st *dispatch.State, mayRequest bool) (Result, error) {
	run := st.Run
	on := ""
	if run.HeadBranch != "" {
		on = " on " + run.HeadBranch
	}
	msg := fmt.Sprintf("run %d %s builds commit %s%s, not the expected commit %s (expectedHeadSHA): %s has moved on since that commit was chosen; "+
		"not dispatching again", run.ID, run.HTMLURL, run.HeadSHA, on, d.cfg.ExpectedHeadSHA, d.cfg.Ref)
	out := d.withRun(d.output(st), run)
	if !d.cfg.CancelOnMismatch {
		return failed(fmt.Errorf("%s; the run was not cancelled (set cancelOnMismatch to cancel such a run)", msg), out)
	}
	cs, err := decodeCancel(ownOutput(d.sc)[outCancel])
	if err != nil {
		cs = &cancelState{Phase: cancelUnreadable}
	}
	if cs == nil {
		cs = &cancelState{Attempt: newCancelAttempt(), Phase: cancelRecorded}
		cancels.record(cs.Attempt)
		if d.sc.SavesState || !mayRequest {
			// Saved before the cancel leaves, as a dispatch's intent is,
			// so that a restart cannot send it twice.
			out[outCancel] = cs.encode()
			return running(fmt.Sprintf("%s; cancelling run %d (cancelOnMismatch)", msg, run.ID), out, intentRetry), nil
		}
	}
	if cs.Phase == cancelRecorded {
		if answer, ok := cancels.sent(cs.Attempt); ok {
			cs.Phase, cs.Answer = cancelSent, answer // sent by an earlier call of this process
		} else if !cancels.take(cs.Attempt) {
			cs.Phase = cancelRestarted
		} else {
			cctx, cancel := d.r.call(ctx)
			defer cancel()
			answer, cerr := wait.Cancel(cctx, d.t.client, run.ID)
			cs.Phase, cs.Answer = cancelSent, string(answer)
			if cerr != nil {
				cs.Detail = ghclient.Describe(cerr)
			}
			cancels.done(cs.Attempt, cs.Answer)
		}
	}
	out[outCancel] = cs.encode()
	return failed(fmt.Errorf("%s; %s", msg, cs.sentence(run)), out)
}

// cancelState is the cancel of a mismatched run, saved in the step's
// output: recorded before it is sent (only the process that recorded it
// may send it), then sent with GitHub's answer.
type cancelState struct {
	Attempt string
	Phase   string
	Answer  string
	Detail  string
}

const (
	cancelRecorded = "recorded"
	cancelSent     = "sent"
	// cancelRestarted: recorded by a process that is gone, which may have
	// sent it. cancelUnreadable: a saved cancel that cannot be read.
	// Neither is sent.
	cancelRestarted  = "restarted"
	cancelUnreadable = "unreadable"
)

func (c *cancelState) encode() map[string]any {
	m := map[string]any{"version": int64(1), "attempt": c.Attempt, "phase": c.Phase}
	if c.Answer != "" {
		m["answer"] = c.Answer
	}
	if c.Detail != "" {
		m["detail"] = c.Detail
	}
	return m
}

// decodeCancel reads a saved cancel: nil when there is none, an error for
// one it cannot read (which is then never sent: it may have been).
func decodeCancel(v any) (*cancelState, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("cancel state is a %T", v)
	}
	c := &cancelState{}
	c.Attempt, _ = m["attempt"].(string)
	c.Phase, _ = m["phase"].(string)
	c.Answer, _ = m["answer"].(string)
	c.Detail, _ = m["detail"].(string)
	switch {
	case m["version"] != int64(1) && m["version"] != float64(1):
		return nil, fmt.Errorf("cancel state version %v", m["version"])
	case c.Phase != cancelRecorded && c.Phase != cancelSent && c.Phase != cancelRestarted && c.Phase != cancelUnreadable:
		return nil, fmt.Errorf("cancel state phase %q", c.Phase)
	case c.Phase == cancelRecorded && c.Attempt == "":
		return nil, fmt.Errorf("cancel state without an attempt")
	}
	return c, nil
}

// sentence says whether the cancel was sent and what GitHub answered.
func (c *cancelState) sentence(run *dispatch.Run) string {
	switch {
	case c.Phase == cancelSent && c.Answer == string(wait.CancelAccepted):
		return fmt.Sprintf("cancelOnMismatch: the cancel of run %d was sent once and GitHub accepted it (202): the run is being cancelled", run.ID)
	case c.Phase == cancelSent && c.Answer == string(wait.CancelCompleted):
		return fmt.Sprintf("cancelOnMismatch: the cancel of run %d was sent once and GitHub answered 409: the run had already completed", run.ID)
	case c.Phase == cancelSent && c.Answer == string(wait.CancelRefused):
		return fmt.Sprintf("cancelOnMismatch: the cancel of run %d was sent once and GitHub refused it (%s): the run goes on; cancel it at %s", run.ID, c.Detail, run.HTMLURL)
	case c.Phase == cancelSent && c.Answer == string(wait.CancelNotSent):
		return fmt.Sprintf("cancelOnMismatch: the cancel of run %d could not be sent (%s): the run goes on; cancel it at %s", run.ID, c.Detail, run.HTMLURL)
	case c.Phase == cancelSent:
		return fmt.Sprintf("cancelOnMismatch: the cancel of run %d was sent once and its answer was lost (%s), so whether GitHub cancelled it is not known; it is not sent again: check %s", run.ID, c.Detail, run.HTMLURL)
	case c.Phase == cancelRestarted:
		return fmt.Sprintf("cancelOnMismatch: the cancel of run %d was recorded by an earlier process, which may have sent it; it is not sent again: check %s", run.ID, run.HTMLURL)
	}
	return fmt.Sprintf("cancelOnMismatch: the saved cancel of run %d cannot be read, so whether it was sent is not known; it is not sent again: check %s", run.ID, run.HTMLURL)
}

// cancelMemory is which cancels this process recorded and, once sent,
// GitHub's answers: a cancel is sent only by the process that recorded
// it, once. It is process-wide, as the attempt IDs are random.
type cancelMemory struct {
	mu      sync.Mutex
	pending map[string]bool
	answers map[string]string
}

// maxCancels bounds the memory; beyond it it starts afresh, which only
// makes a recorded cancel unsendable (never sent twice).
const maxCancels = 10000

var cancels = &cancelMemory{}

func (m *cancelMemory) record(attempt string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending == nil || len(m.pending)+len(m.answers) >= maxCancels {
		m.pending, m.answers = map[string]bool{}, map[string]string{}
	}
	m.pending[attempt] = true
}

// take claims the right to send attempt's cancel: true once, for a cancel
// this process recorded.
func (m *cancelMemory) take(attempt string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	ok := m.pending[attempt]
	delete(m.pending, attempt)
	return ok
}

func (m *cancelMemory) done(attempt, answer string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.answers != nil {
		m.answers[attempt] = answer
	}
}

func (m *cancelMemory) sent(attempt string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.answers[attempt]
	return a, ok
}

func newCancelAttempt() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "cancel-" + hex.EncodeToString(b[:])
}
