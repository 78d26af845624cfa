package dispatch

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
)

// find lists the workflow's runs once and attributes one, or says when to
// look again; past the timeout it fails, saying what may exist.
func (d *Dispatcher) find(ctx context.Context, c *ghclient.Client, req Request, s *State) (Step, error) {
	w := d.flow(c, req)
	if w == nil {
		return Step{Wait: time.Second, Message: errBusy.Error()}, nil
	}
	now := d.clock().Now()
	if id, how, ok := w.takenBy(s.Attempt); ok && s.Named == 0 {
		d.found(c, s, id, how)
		withHead(s, w.listedRuns())
		return Step{}, nil
	}
	if s.Key == "" {
		if s.Phase == PhaseSent {
			w.hold(s.Attempt, now.Add(time.Second)) // one resumed after a restart holds too
		}
		if !c.LoginKnown() {
			// Runs another user started are never this dispatch's: asking
			// whose token this is is this call's one request.
			c.Login(ctx)
			return Step{Message: d.lookingFor(req, s)}, nil
		}
	}
	host := d.host(c.Repo.APIBaseURL)
	floor := d.floor(host, s)
	l, complete, err := w.refresh(ctx, c, host, floor, now)
	if err != nil {
		if code := ghclient.StatusCode(err); code >= 400 && code < 500 && code != http.StatusTooManyRequests && !ghclient.RateLimited(err) {
			return d.fail(s, fmt.Errorf("the run cannot be looked up: %w; %s", err, mayExist(req, s)))
		}
		s.FindFailures++
		return d.again(req, s, err, false)
	}
	s.FindFailures = 0
	if s.NotBefore.IsZero() {
		s.NotBefore = d.notBefore(host, s, l)
	}
	if s.ReceivedBy.IsZero() && !s.SentAt.IsZero() && !l.ServerNow.IsZero() {
		// The answer had no Date: GitHub had the dispatch by this listing's.
		s.ReceivedBy = l.ServerNow.Add(wholeSecond)
	}
	claimed := w.claimedByOthers(s.Attempt)
	v := Attribute(d.seeker(c, req, s), l, claimed)
	if v.Run > 0 && v.Run == s.Named {
		v.Method = ByRunDetails
	}
	switch {
	case v.Run > 0:
		w.take(v.Run, s.Attempt, v.Method, now)
		d.found(c, s, v.Run, v.Method)
		withHead(s, l.Runs)
		return Step{}, nil
	case v.Refused:
		w.unhold(s.Attempt)
		return d.fail(s, &AmbiguousError{Workflow: req.WorkflowFile, Candidates: d.results(c, v.Candidates), RunsPage: s.RunsPage, Reason: v.Reason, Key: s.Key, Uncertainty: s.Uncertainty, Settle: d.SettleOf(req)})
	case !complete && s.Key == "":
		w.unhold(s.Attempt)
		return d.fail(s, fmt.Errorf("more runs of %s on %s appeared since the dispatch than one listing holds (%d pages), so its own cannot be told; %s", req.WorkflowFile, req.Ref, maxListPages, mayExist(req, s)))
	}
	// A dispatch without a key with runs in view, or with a key the caller
	// chose, waits for the settle before it decides: it gets that long.
	return d.again(req, s, nil, s.KeyGiven || s.Key == "" && candidates(l, claimed, s.NotBefore))
}

// candidates reports runs in view that attribution may still be deciding
// on: not taken by this process, created in the window.
func candidates(l Listing, claimed func(int64) bool, notBefore time.Time) bool {
	for _, r := range l.Runs {
		if !claimed(r.ID) && !r.Created.Before(notBefore) {
			return true
		}
	}
	return false
}

// again schedules the next look, or fails once the timeout has passed. A
// dispatch without a key that has candidates in view gets at least the
// time its attribution needs to decide.
// maxFindBackoff bounds the pause between failing listings: a run found a
// little late is better than one looked for after the deadline.
const maxFindBackoff = 8 * time.Second

func (d *Dispatcher) again(req Request, s *State, lastErr error, deciding bool) (Step, error) {
	waited := d.clock().Now().Sub(s.Start())
	if deciding {
		req.Timeout = max(req.Timeout, d.decisionTime(req))
	}
	pause := FindInterval(waited)
	if ra, ok := ghclient.RetryAfter(lastErr); ok {
		pause = max(pause, ra)
	} else if lastErr != nil {
		// GitHub failing (each listing was retried already): 1, 2, 4, 8 s
		// between looks, not the find interval's half second.
		pause = max(pause, min(backoff(s.FindFailures), maxFindBackoff))
	}
	left := req.Timeout - waited
	switch {
	case left <= 0:
		return d.fail(s, notFound(req, s, lastErr))
	case pause > left:
		pause = left // the last look falls on the deadline
	}
	msg := d.lookingFor(req, s)
	if lastErr != nil {
		msg += " (last listing: " + ghclient.Describe(lastErr) + ")"
	}
	return Step{Wait: pause, Message: msg}, nil
}

func (d *Dispatcher) lookingFor(req Request, s *State) string {
	what := "dispatched"
	switch s.Uncertainty {
	case LostAnswer:
		what = "maybe dispatched (answer lost)"
	case Restarted:
		what = "maybe dispatched (before a restart)"
	}
	return fmt.Sprintf("%s %s on %s at %s; looking for its run", what, req.WorkflowFile, req.Ref, stamp(s.Start()))
}

// floor is where a listing for s starts, on the server's clock: a minute
// before the dispatch, so that a run created a little early on a skewed
// clock is still seen (attribution judges the window).
func (d *Dispatcher) floor(host *hostState, s *State) time.Time {
	at := s.NotBefore
	if !s.KeyCheckedAt.IsZero() && (at.IsZero() || s.KeyCheckedAt.Before(at)) {
		at = s.KeyCheckedAt
	}
	if at.IsZero() {
		at, _ = host.serverTime(s.Start())
	}
	return at.Add(-time.Minute)
}

// notBefore fills in the window of a dispatch whose answer had no Date, or
// that this process did not send: from the listing's Date and the time
// since sending, or, after a restart, from when the intent was recorded.
func (d *Dispatcher) notBefore(host *hostState, s *State, l Listing) time.Time {
	if l.ServerNow.IsZero() {
		return time.Time{}
	}
	if !s.SentAt.IsZero() {
		return windowStart(s.SentAt, l.ServerNow, d.clock().Now())
	}
	t, _ := host.serverTime(s.IntentAt)
	return t.Add(-time.Second).Truncate(time.Second)
}

func (d *Dispatcher) seeker(c *ghclient.Client, req Request, s *State) Seeker {
	sk := Seeker{Key: s.Key, KeyGiven: s.KeyGiven, KeyCheckedAt: s.KeyCheckedAt, NotBefore: s.NotBefore, ReceivedBy: s.ReceivedBy, Named: s.Named,
		Uncertain: s.Phase == PhaseSending, Settle: d.SettleOf(req)}
	if s.Key == "" && c.LoginKnown() {
		sk.Login = c.Login(context.Background()) // known: no request
	}
	return sk
}

// found ends s with run id.
func (d *Dispatcher) found(c *ghclient.Client, s *State, id int64, how Method) {
	api, web := runURLs(c, id)
	s.Phase, s.Run = PhaseFound, &Run{ID: id, URL: api, HTMLURL: web, Method: how}
}

// fail ends s with err, which must say what may exist.
func (d *Dispatcher) fail(s *State, err error) (Step, error) {
	s.Phase, s.Failure = PhaseFailed, err.Error()
	return Step{}, s.failedWith(err)
}

func (d *Dispatcher) results(c *ghclient.Client, ids []int64) []*Run {
	out := make([]*Run, len(ids))
	for i, id := range ids {
		api, web := runURLs(c, id)
		out[i] = &Run{ID: id, URL: api, HTMLURL: web}
	}
	return out
}

// notFound is the failure of a dispatch whose run did not appear in time,
// saying what really happened to the dispatch.
func notFound(req Request, s *State, lastErr error) error {
	var msg string
	switch s.Uncertainty {
	case LostAnswer:
		msg = fmt.Sprintf("the answer to the dispatch of %s on %s was lost, so GitHub may or may not have acted, and no run of it appeared within %s", req.WorkflowFile, req.Ref, req.Timeout)
	case Restarted:
		msg = fmt.Sprintf("the dispatch of %s on %s may have been sent before a restart, and no run of it appeared within %s", req.WorkflowFile, req.Ref, req.Timeout)
	default:
		msg = fmt.Sprintf("GitHub accepted the dispatch of %s on %s, but its run did not appear within %s", req.WorkflowFile, req.Ref, req.Timeout)
	}
	switch {
	case s.Named > 0:
		msg = fmt.Sprintf("GitHub named run %d for the dispatch of %s on %s, but it could not be confirmed within %s as the only run carrying key %s", s.Named, req.WorkflowFile, req.Ref, req.Timeout, s.Key)
	case s.Key != "" && s.Uncertainty != "":
		msg += fmt.Sprintf(": no run whose title carries %s (if GitHub did act, check that the workflow's run-name contains ${{ inputs.%s }})", s.Key, req.CorrelationInput)
	case s.Key != "":
		msg += fmt.Sprintf(": no run whose title carries %s; the workflow's run-name must contain ${{ inputs.%s }} (see README, correlationInput)", s.Key, req.CorrelationInput)
	}
	if lastErr != nil {
		msg += "; last listing error: " + ghclient.Describe(lastErr)
	}
	return fmt.Errorf("%s; %s", msg, mayExist(req, s))
}

// mayExist says what may exist after a dispatch whose run is not known, and
// where to look.
func mayExist(req Request, s *State) string {
	m := fmt.Sprintf("a run may still start: check %s for runs created since %s", s.RunsPage, stamp(s.Start()))
	if s.Key != "" {
		m += fmt.Sprintf(" (its title carries %s)", s.Key)
	}
	return m + " before dispatching again"
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

// Error is a dispatch that ended without a run. It is final: MayExist says
// whether a run may have started anyway (the message then says where to
// look).
type Error struct {
	Message  string
	MayExist bool
	cause    error // what failed, when this process saw it (not after a restart)
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.cause }

// AmbiguousError is attribution's refusal to guess: the runs that could be
// the dispatch's, and why none is taken.
type AmbiguousError struct {
	Workflow    string
	Candidates  []*Run
	RunsPage    string
	Reason      Reason
	Key         string
	Uncertainty Uncertainty
	Settle      time.Duration
	// Before: found by the look-up before sending; nothing was sent.
	Before bool
}

func (e *AmbiguousError) Error() string {
	ids := make([]string, len(e.Candidates))
	for i, c := range e.Candidates {
		ids[i] = fmt.Sprintf("%d (%s)", c.ID, c.HTMLURL)
	}
	runs := "runs " + strings.Join(ids, ", ")
	if len(ids) == 1 {
		runs = "run " + ids[0]
	}
	var why string
	switch e.Reason {
	case ReasonKeyReused:
		why = fmt.Sprintf("%s carry key %s: the same key is the same dispatch, and it was used more than once", runs, e.Key)
		if e.Before {
			return fmt.Sprintf("not dispatching %s: %s; nothing was sent. Check %s, and use a new key for a new dispatch", e.Workflow, why, e.RunsPage)
		}
	case ReasonUncertain:
		why = fmt.Sprintf("%s appeared in its window, and the dispatch's answer was lost (or its process restarted), so GitHub may not have acted and another dispatcher of the same workflow and ref may have created it", runs)
		if e.Uncertainty == Restarted {
			why = fmt.Sprintf("%s appeared in its window, and the dispatch may or may not have been sent before a restart, so another dispatcher of the same workflow and ref may have created it", runs)
		}
	case ReasonLate:
		why = fmt.Sprintf("%s appeared later than runs are assumed to (%s after the dispatch), so it may be another dispatcher's", runs, e.Settle)
	case ReasonClock:
		why = "the server's clock cannot be trusted to bound the dispatch's window (its answers have no Date header, or their Date disagrees with the runs' created_at)"
		if len(ids) > 0 {
			why += "; candidates: " + strings.Join(ids, ", ")
		}
	default:
		why = fmt.Sprintf("%s appeared in the same window, and another dispatcher of the same workflow and ref may have created them", runs)
	}
	return fmt.Sprintf("cannot tell which run this dispatch of %s created: %s; not guessing. "+
		"Check %s before dispatching again, and set correlationInput (see README) to make attribution exact", e.Workflow, why, e.RunsPage)
}
