// Package dispatch starts GitHub Actions workflows with the
// workflow_dispatch event and finds the run each dispatch created, at most
// once: a dispatch GitHub may have acted on is never sent again, and a run
// that cannot be told apart from another dispatcher's is refused, never
// guessed.
//
// A dispatch is a State that Advance moves forward one HTTP round trip at
// a time (see Phase), so that a caller can save it between calls and
// resume after a restart (the Kargo step), or loop over it (Dispatch, the
// command line). Which run is the dispatch's is decided by Attribute, a
// pure function of what the listings showed.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/bounded"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// Request is one workflow dispatch.
type Request struct {
	// WorkflowFile is the file name in .github/workflows ("deploy.yml").
	WorkflowFile string
	// Ref is the branch or tag to run the workflow on.
	Ref string
	// Inputs are the workflow_dispatch inputs, already rendered as strings.
	Inputs map[string]string
	// CorrelationInput, when set, names a workflow input that receives the
	// dispatch's key; the workflow's run-name must contain
	// ${{ inputs.<CorrelationInput> }} so that the run's title carries it.
	CorrelationInput string
	// Timeout bounds the whole dispatch, counted from its intent: sending
	// it (rate limits, an unreachable server) and then finding its run,
	// counted again from the send. DefaultTimeout when zero. A dispatch
	// attributed by listing is given at least its settle and read lag to
	// decide, whatever the timeout.
	Timeout time.Duration
	// Settle overrides the Dispatcher's settle for this dispatch: how long
	// after GitHub accepted it its run is assumed to exist (attribution
	// by listing only).
	Settle time.Duration
}

// Defaults and limits of a dispatch.
const (
	// DefaultTimeout is the step reference's default timeout.
	DefaultTimeout = 60 * time.Second
	// DefaultSettle: GitHub creates a run a few seconds at most after
	// accepting its dispatch. A run is attributed by listing only once
	// this long has passed after the dispatch with no second run in the
	// window; a run slower than this is outside the assumption.
	DefaultSettle = 10 * time.Second
	// DefaultPostTimeout bounds the dispatch request itself. It is longer
	// than a step call's bound on purpose: an answer cut off by a short
	// timeout is a lost answer, whose run can only be refused without a key.
	DefaultPostTimeout = 30 * time.Second
	// KeyLookback is how far back, before sending a keyed dispatch, runs
	// are searched for one that already carries the key.
	KeyLookback = time.Hour
	// maxBackoff caps the pause between tries of a dispatch that provably
	// never reached GitHub, and between failed listings.
	maxBackoff = 30 * time.Second
	// maxWorkflows bounds the workflows and refs a long-lived Dispatcher
	// follows; only idle ones are ever forgotten.
	maxWorkflows = 10000
	// maxHosts bounds the API hosts remembered; forgetting one costs a 400
	// on an old GHES at worst.
	maxHosts = 1000
)

// Dispatcher sends dispatches and finds their runs. One Dispatcher should
// serve a whole process: it remembers which dispatches it recorded (only
// those may be sent), which runs its dispatches took (no run is given
// twice), and which dispatches are still deciding their run. It is safe
// for concurrent use.
type Dispatcher struct {
	// Clock is the time source; the system clock when nil.
	Clock clock.Clock
	// Settle overrides DefaultSettle when set.
	Settle time.Duration
	// PostTimeout overrides DefaultPostTimeout when set.
	PostTimeout time.Duration

	intents intentMemory
	mu      sync.Mutex
	flows   map[string]*workflowRuns
	hosts   map[string]*hostState
}

// ErrHeld is why a dispatch was not sent: an earlier dispatch of the same
// workflow and ref in this process, without a key, is still deciding its
// run, and a new run now could be either's. Nothing was sent.
var ErrHeld = errors.New("an earlier dispatch of the same workflow and ref in this process is still looking for its run; nothing was sent")

// Step is what an Advance call asks of its caller when the dispatch has not
// ended: call again after Wait. Message says where the dispatch is.
type Step struct {
	Wait    time.Duration
	Message string
}

// Record records the intent to dispatch req and returns its state, before
// anything is sent: a caller that saves state saves it now. key is the
// correlation key when req.CorrelationInput is set ("" for a fresh random
// one); given says the caller chose it (it may be in use elsewhere) rather
// than derived it uniquely.
func (d *Dispatcher) Record(req Request, key string, given bool) *State {
	s := &State{Version: StateVersion, Phase: PhaseRecorded, Attempt: RandomKey(), IntentAt: d.clock().Now()}
	if req.CorrelationInput != "" {
		s.Key, s.KeyGiven = key, given && key != ""
		if s.Key == "" {
			s.Key = RandomKey()
		}
	}
	d.intents.put(s.Attempt, intentRecorded)
	return s
}

// Advance does the next piece of a dispatch, at most one GitHub round trip
// (up to two, once per host, on a server that refuses the API version or
// return_run_details it is asked with first: a refusal sent nothing), and
// moves s:
//
//   - recorded, with a key not yet looked up: looks for an earlier run
//     carrying it (found: that is the run, nothing is sent);
//   - recorded by this process: sends the dispatch, once;
//   - recorded by another process (a restart): it may have been sent, so
//     it is never sent again; its run is looked for;
//   - sending or sent: lists the workflow's runs and attributes one.
//
// It returns the next Step while the dispatch goes on. When s is done it
// returns a nil error for a run (s.Run) and the final error otherwise,
// which says what may exist and where to look. A transient error means
// nothing was sent and the dispatch's time is up: it may be retried whole.
// A context that ends during a call leaves s as it stands, never failed.
func (d *Dispatcher) Advance(ctx context.Context, c *ghclient.Client, req Request, s *State) (Step, error) {
	req.Timeout = req.timeout()
	if s.RunsPage == "" {
		s.RunsPage = RunsPage(c, req.WorkflowFile)
	}
	switch {
	case s.Done():
		return Step{}, s.Err()
	case s.MaySend() && !d.intents.recordedHere(s.Attempt):
		s.Phase, s.Uncertainty = PhaseSending, Restarted
		return Step{Message: fmt.Sprintf("the dispatch of %s recorded at %s was made by an earlier process, which may have sent it: looking for its run, not dispatching again", req.WorkflowFile, stamp(s.IntentAt))}, nil
	case s.MaySend() && s.Key != "" && s.KeyCheckedAt.IsZero():
		return d.checkKey(ctx, c, req, s)
	case s.MaySend():
		return d.send(ctx, c, req, s)
	}
	return d.find(ctx, c, req, s)
}

// Err is the error of a done state: nil for a run, the failure otherwise.
func (s *State) Err() error {
	if s.Phase != PhaseFailed {
		return nil
	}
	return s.failedWith(nil)
}

// failedWith is the error of a failed s, unwrapping to cause when this
// process saw it.
func (s *State) failedWith(cause error) *Error {
	return &Error{Message: s.Failure, MayExist: s.MayHaveSent(), cause: cause}
}

func (d *Dispatcher) clock() clock.Clock { return clock.Or(d.Clock) }

// SettleOf is how long after a dispatch of req its run is assumed to
// exist (attribution by listing only).
func (d *Dispatcher) SettleOf(req Request) time.Duration {
	switch {
	case req.Settle > 0:
		return req.Settle
	case d.Settle > 0:
		return d.Settle
	}
	return DefaultSettle
}

// decisionTime is how long after a dispatch attribution by listing may
// need to decide: the settle, created_at's whole second, the read lag.
func (d *Dispatcher) decisionTime(req Request) time.Duration {
	return d.SettleOf(req) + wholeSecond + readLag + time.Second
}

func (r Request) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultTimeout
}

// flow is the workflowRuns of req's workflow and ref on c's repository,
// or nil when this process already follows too many that are busy.
func (d *Dispatcher) flow(c *ghclient.Client, req Request) *workflowRuns {
	key := c.Repo.APIBaseURL + "|" + strings.ToLower(c.Repo.FullName()) + "|" + req.WorkflowFile + "|" + req.branch()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.flows == nil {
		d.flows = map[string]*workflowRuns{}
	}
	if w, ok := d.flows[key]; ok {
		return w
	}
	if len(d.flows) >= maxWorkflows {
		now := d.clock().Now()
		for k, w := range d.flows {
			if w.idle(now) {
				delete(d.flows, k)
			}
		}
		if len(d.flows) >= maxWorkflows {
			return nil
		}
	}
	w := newWorkflowRuns(req.WorkflowFile, req.branch())
	d.flows[key] = w
	return w
}

// errBusy: forgetting a busy workflow would drop a hold or a claim.
var errBusy = errors.New("this process is following too many dispatches that are still looking for their runs; nothing was sent")

func (d *Dispatcher) host(apiBase string) *hostState {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hosts == nil || len(d.hosts) >= maxHosts {
		d.hosts = map[string]*hostState{}
	}
	h, ok := d.hosts[apiBase]
	if !ok {
		h = &hostState{clock: d.clock()}
		d.hosts[apiBase] = h
	}
	return h
}

// hostState remembers how an API host takes a dispatch (its DispatchAPI)
// and how its clock differs from this one.
type hostState struct {
	clock clock.Clock
	mu    sync.Mutex
	api   DispatchAPI   // "" until an answer showed it
	skew  time.Duration // server clock minus local clock, from Date headers
	known bool          // a Date has been seen
}

func (h *hostState) getAPI() DispatchAPI {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.api
}

func (h *hostState) setAPI(a DispatchAPI) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.api = a
}

// observe learns the server's clock from a response's Date header.
func (h *hostState) observe(resp *http.Response) {
	if t, ok := dateOf(resp); ok {
		h.observeDate(t, h.clock.Now())
	}
}

// serverTime converts a local time to the server's clock, as far as this
// process can tell (ok is false before any Date was seen).
func (h *hostState) serverTime(local time.Time) (t time.Time, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return local.Add(h.skew), h.known
}

func dateOf(resp *http.Response) (time.Time, bool) {
	if resp == nil {
		return time.Time{}, false
	}
	t, err := http.ParseTime(resp.Header.Get("Date"))
	return t, err == nil
}

// windowStart is, on the server's clock, a time before a dispatch sent at
// sent (local clock) reached GitHub, given a Date the server stamped after
// receiving it and now (local clock): the Date less the time since
// sending, in whole seconds as created_at has them.
func windowStart(sent, date, now time.Time) time.Time {
	return date.Add(-now.Sub(sent)).Truncate(time.Second)
}

// intent states kept in memory: recorded here and not sent, or on its way
// (sending, sent or settled: not sendable again).
const (
	intentRecorded = 1 + iota
	intentSending
)

// intentMemory remembers the dispatches this process recorded, bounded in
// size and age: an intent forgotten is no longer sendable, which is the
// safe side (its run is looked for as after a restart).
type intentMemory struct {
	m bounded.Map[string, int]
}

const (
	maxIntents   = 10000
	maxIntentAge = time.Hour
)

func (m *intentMemory) put(id string, state int) { m.m.Put(id, state, maxIntents, maxIntentAge) }

func (m *intentMemory) recordedHere(id string) bool {
	v, _ := m.m.Get(id, maxIntentAge)
	return v == intentRecorded
}

// swap sets id to next if it is in state from.
func (m *intentMemory) swap(id string, from, next int) bool {
	return m.m.Update(id, maxIntentAge, func(v int) (int, bool) { return next, v == from })
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// branch is the ref as run listings name it.
func (r Request) branch() string {
	return strings.TrimPrefix(strings.TrimPrefix(r.Ref, "refs/heads/"), "refs/tags/")
}

// RunsPage is the web page listing the workflow's runs: where a person looks
// for a run whose dispatch outcome is unknown.
func RunsPage(c *ghclient.Client, workflowFile string) string {
	return fmt.Sprintf("%s/actions/workflows/%s", c.Repo.WebURL(), url.PathEscape(workflowFile))
}

// runURLs are the API and web URLs of run id in the client's repository.
func runURLs(c *ghclient.Client, id int64) (api, web string) {
	return fmt.Sprintf("%srepos/%s/actions/runs/%d", c.Repo.APIBaseURL, c.Repo.FullName(), id),
		fmt.Sprintf("%s/actions/runs/%d", c.Repo.WebURL(), id)
}
