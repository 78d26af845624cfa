// Package dispatch starts GitHub Actions workflows with the
// workflow_dispatch event and finds the run each dispatch created, at most
// once: a dispatch GitHub may have acted on is never sent again.
//
// A dispatch is an Attempt that goes intent → Send → Find, one HTTP round
// trip per call, so that a caller can persist it between calls (the Kargo
// step) or loop over it (the command line, Dispatch). GitHub names the run in
// its answer when asked (return_run_details: github.com, GHES 3.21+). When it
// does not, the run is found by its correlation key in the run's title
// (exact, when the workflow echoes the key in its run-name), or else as the
// only new run of the workflow and ref in the attempt's window: when two runs
// cannot be told apart, Find refuses and names both.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
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
	// attempt's key; the workflow's run-name must contain
	// ${{ inputs.<CorrelationInput> }} so that the run's title carries it.
	CorrelationInput string
}

// Dispatcher sends dispatches and finds their runs. One Dispatcher should
// serve a whole process: it remembers which attempts it recorded (only those
// may be sent) and which runs its attempts took (no run is given twice). It
// is safe for concurrent use.
type Dispatcher struct {
	// Logf, when set, receives progress messages for people; a logger in
	// the call's context (ContextWithLogf) takes precedence.
	Logf func(format string, args ...any)
	// Settle is how long after a run's creation Find waits for a second run
	// to show up in the same window before it takes the first as its own
	// (attribution without run details or a key); DefaultSettle when zero.
	Settle time.Duration
	// HoldWindow is how long a dispatch whose answer was lost keeps other
	// dispatches of its workflow and ref in this process from being sent
	// while its run is looked for; DefaultHoldWindow when zero.
	HoldWindow time.Duration

	intents  intentMemory
	mu       sync.Mutex
	trackers map[string]*tracker
	hosts    map[string]*hostState
}

// DefaultSettle: GitHub creates runs a few seconds at most after accepting a
// dispatch, in the order it accepted them; a run of another dispatcher that
// was created within this long of the first candidate makes the attempt
// ambiguous instead of wrongly attributed.
const DefaultSettle = 5 * time.Second

// hostState remembers what an API host does with return_run_details and how
// its clock differs from this one.
type hostState struct {
	mu   sync.Mutex
	mode detailsMode
	skew time.Duration // server clock minus local clock, from Date headers
}

type detailsMode int

const (
	modeUnknown detailsMode = iota
	modeNoField             // refuses the field (GHES 3.20 and older)
)

// Send posts the dispatch of a, once. It refuses an attempt this
// Dispatcher did not record or already sent (see CanSend). On return:
//   - nil error: GitHub accepted it; a.Run is set when GitHub named the run,
//     otherwise Find looks for it;
//   - an error with a.MaybeSent false: the request provably had no effect
//     (never left this process, or GitHub refused it); sending again is safe;
//   - an error with a.MaybeSent true: GitHub may have acted; the error is
//     final for sending, and Find looks for the run.
//
// The request is not interrupted by ctx's cancellation once it has started
// to leave (its own timeout, callTimeout, bounds it): a dispatch stopped
// halfway is the one outcome nobody can tell apart.
func (d *Dispatcher) Send(ctx context.Context, c *ghclient.Client, req Request, a *Attempt) error {
	if err := req.validate(a); err != nil {
		return failure.Final(err)
	}
	t := d.tracker(c, req)
	release, err := t.acquirePost(ctx)
	if err != nil {
		return err
	}
	defer release()
	if !d.intents.swap(a.ID, intentRecorded, intentSending) {
		return failure.Final(errors.New("this dispatch attempt was not recorded by this process, or was sent already: its run must be looked for, not dispatched again"))
	}
	host := d.host(c.Repo.APIBaseURL)
	details, err := d.post(ctx, c, host, req, a, host.getMode() != modeNoField)
	if err != nil && !a.MaybeSent && refusesRunDetails(err) {
		// GHES 3.20 and older refuse the field with a 400 and do not
		// dispatch; dispatching again without it is safe.
		host.setMode(modeNoField)
		d.logf(ctx, "%s does not support return_run_details; dispatching without it", c.Repo.Host)
		details, err = d.post(ctx, c, host, req, a, false)
	}
	if a.MaybeSent {
		d.intents.put(a.ID, intentSent)
		t.bound(a, host) // still holding the right to send: nothing went out since
	} else {
		d.intents.put(a.ID, intentRecorded)
	}
	if err != nil {
		if a.MaybeSent {
			t.register(a, lost)
			if a.Key == "" {
				t.hold(a.ID, d.holdWindow()) // a keyed run is told apart by its key
			}
		}
		return d.sendError(err, c, req, a)
	}
	if id := details.GetWorkflowRunID(); id > 0 {
		res := &Result{RunID: id, RunURL: details.GetRunURL(), HTMLURL: details.GetHTMLURL(), Method: ByRunDetails}
		if err := checkResultURLs(c, res); err != nil {
			d.logf(ctx, "%v; using the URLs of run %d on %s", err, id, c.Repo.Host)
			res.RunURL, res.HTMLURL = runURLs(c, id)
		}
		a.Run = res
		t.claimed.Put(id, a.ID, maxClaims, claimAge)
		return nil
	}
	t.register(a, accepted)
	return nil
}

// callTimeout bounds the dispatch request when the caller's context has no
// deadline of its own.
const callTimeout = 30 * time.Second

// post sends the request. It sets a.SentAt when the request starts to leave,
// a.MaybeSent unless GitHub provably did not act, and a.NotBefore from the
// answer's Date.
func (d *Dispatcher) post(ctx context.Context, c *ghclient.Client, host *hostState, req Request, a *Attempt, runDetails bool) (*github.WorkflowDispatchRunDetails, error) {
	body := github.CreateWorkflowDispatchEventRequest{Ref: req.Ref, Inputs: req.body(a)}
	if runDetails {
		body.ReturnRunDetails = github.Ptr(true)
	}
	// Not cancelled by ctx, bounded by its deadline or callTimeout.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeLeft(ctx, callTimeout))
	defer cancel()
	var wrote atomic.Bool
	pctx = ghclient.WithSentFlag(pctx, &wrote)
	sent := time.Now()
	a.SentAt = sent
	details, resp, err := c.Actions.CreateWorkflowDispatchEventByFileName(pctx,
		url.PathEscape(c.Repo.Owner), url.PathEscape(c.Repo.Name), url.PathEscape(req.WorkflowFile), body)
	if resp != nil {
		host.observe(resp.Response)
	}
	if err == nil || (wrote.Load() && !refused(err)) {
		a.MaybeSent = true
	}
	if resp != nil && a.MaybeSent && a.NotBefore.IsZero() {
		// The Date was stamped after GitHub received the request.
		if date, ok := dateOf(resp.Response); ok {
			a.NotBefore = windowStart(sent, date)
		}
	}
	return details, err
}

// refused reports an answer in which GitHub refused the request without
// acting on it: a 4xx error or a rate limit.
func refused(err error) bool {
	if ghclient.RateLimited(err) {
		return true
	}
	code := ghclient.StatusCode(err)
	return code >= 400 && code < 500
}

// sendError explains a failed send. After a possible effect the error says
// what may exist and where to look; before, it keeps its class (a rate
// limit or a connection never made is transient).
func (d *Dispatcher) sendError(err error, c *ghclient.Client, req Request, a *Attempt) error {
	action := fmt.Sprintf("dispatching workflow %s on %s in %s", req.WorkflowFile, req.Ref, c.Repo.FullName())
	if a.MaybeSent {
		return failure.Final(fmt.Errorf("%s: %s; GitHub may have started a run: looking for it, not dispatching again", action, ghclient.Describe(err)))
	}
	if ghclient.NotSent(err) {
		return failure.Transient(fmt.Errorf("%s: %s; nothing was sent", action, ghclient.Describe(err)))
	}
	return ghclient.Classify(err, action, ghclient.Hints{
		NotFound:      notFoundHint(c, req.WorkflowFile),
		Unprocessable: unprocessableHint(err, req),
		Forbidden:     "the credentials need the actions:write permission (fine-grained token or GitHub App) or the repo scope (classic token)",
	})
}

func (r Request) validate(a *Attempt) error {
	switch {
	case r.WorkflowFile == "" || strings.ContainsAny(r.WorkflowFile, "/\\?#%") || strings.Contains(r.WorkflowFile, ".."):
		return fmt.Errorf("dispatch request: workflow file %q must be a file name without path characters", r.WorkflowFile)
	case r.Ref == "":
		return errors.New("dispatch request: a ref is required")
	case r.CorrelationInput != "" && a.Key == "":
		return errors.New("dispatch request: a correlation input needs an attempt with a key")
	case r.CorrelationInput != "" && r.Inputs[r.CorrelationInput] != "":
		return fmt.Errorf("dispatch request: input %q is set by the correlation key; remove it from the inputs", r.CorrelationInput)
	}
	return nil
}

// body is the inputs object sent, with the correlation key added.
func (r Request) body(a *Attempt) map[string]any {
	if len(r.Inputs) == 0 && r.CorrelationInput == "" {
		return nil
	}
	in := make(map[string]any, len(r.Inputs)+1)
	for k, v := range r.Inputs {
		in[k] = v
	}
	if r.CorrelationInput != "" {
		in[r.CorrelationInput] = a.Key
	}
	return in
}

// branch is the ref as run listings name it.
func (r Request) branch() string {
	return strings.TrimPrefix(strings.TrimPrefix(r.Ref, "refs/heads/"), "refs/tags/")
}

// notFoundHint explains a 404 from the workflow's endpoints.
func notFoundHint(c *ghclient.Client, workflowFile string) string {
	return fmt.Sprintf("check that .github/workflows/%s exists in %s and that the credentials can see the repository (a token without access gets 404, not 403)",
		workflowFile, c.Repo.WebURL())
}

// refusesRunDetails recognises an older server refusing return_run_details
// ("return_run_details is not a permitted key").
func refusesRunDetails(err error) bool {
	code := ghclient.StatusCode(err)
	return (code == http.StatusBadRequest || code == http.StatusUnprocessableEntity) &&
		strings.Contains(ghclient.ErrorMessage(err), "return_run_details")
}

func unprocessableHint(err error, req Request) string {
	msg := ghclient.ErrorMessage(err)
	switch {
	case strings.Contains(msg, "workflow_dispatch"):
		return fmt.Sprintf("the workflow file at ref %q has no 'on: workflow_dispatch' trigger; check the ref, or add the trigger on that branch", req.Ref)
	case strings.Contains(msg, "Unexpected inputs") && req.CorrelationInput != "":
		return fmt.Sprintf("the workflow does not declare these inputs under on.workflow_dispatch.inputs at that ref; declare them (correlationInput %q must be a declared input too) or remove them from the step", req.CorrelationInput)
	case strings.Contains(msg, "Unexpected inputs"):
		return "the workflow does not declare these inputs under on.workflow_dispatch.inputs at that ref; remove them from the step or declare them"
	case strings.Contains(msg, "No ref found"):
		return fmt.Sprintf("no branch or tag %q exists in the repository", req.Ref)
	}
	return ""
}

// checkResultURLs refuses run URLs that point away from the repository's
// hosts: text from the server is shown to people and passed to later steps.
func checkResultURLs(c *ghclient.Client, res *Result) error {
	ok := func(u, base string) bool { return u == "" || ghclient.UnderBase(u, base) }
	if !ok(res.RunURL, c.Repo.APIBaseURL) || !ok(res.HTMLURL, c.Repo.WebURL()) {
		return fmt.Errorf("the dispatch answer named run URLs outside %s", c.Repo.Host)
	}
	return nil
}

// runURLs are the API and web URLs of run id in the client's repository.
func runURLs(c *ghclient.Client, id int64) (api, web string) {
	return fmt.Sprintf("%srepos/%s/actions/runs/%d", c.Repo.APIBaseURL, c.Repo.FullName(), id),
		fmt.Sprintf("%s/actions/runs/%d", c.Repo.WebURL(), id)
}

// RunsPage is the web page listing the workflow's runs: where a person looks
// for a run whose dispatch outcome is unknown.
func RunsPage(c *ghclient.Client, workflowFile string) string {
	return fmt.Sprintf("%s/actions/workflows/%s", c.Repo.WebURL(), url.PathEscape(workflowFile))
}

func (d *Dispatcher) host(apiBase string) *hostState {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hosts == nil {
		d.hosts = map[string]*hostState{}
	}
	h, ok := d.hosts[apiBase]
	if !ok {
		if len(d.hosts) >= maxHosts {
			d.hosts = map[string]*hostState{}
		}
		h = &hostState{}
		d.hosts[apiBase] = h
	}
	return h
}

// maxHosts and maxTrackers bound what a long-lived Dispatcher remembers;
// past them it starts afresh, which costs a 400 on an old GHES at worst.
const (
	maxHosts    = 1000
	maxTrackers = 10000
)

type logfKey struct{}

// ContextWithLogf returns a context whose calls log through logf: a Kargo
// step passes its promotion's logger this way.
func ContextWithLogf(ctx context.Context, logf func(format string, args ...any)) context.Context {
	return context.WithValue(ctx, logfKey{}, logf)
}

func (d *Dispatcher) logf(ctx context.Context, format string, args ...any) {
	if f, ok := ctx.Value(logfKey{}).(func(string, ...any)); ok && f != nil {
		f(format, args...)
		return
	}
	if d.Logf != nil {
		d.Logf(format, args...)
	}
}

func (d *Dispatcher) holdWindow() time.Duration {
	if d.HoldWindow > 0 {
		return d.HoldWindow
	}
	return DefaultHoldWindow
}

func (d *Dispatcher) settle() time.Duration {
	if d.Settle > 0 {
		return d.Settle
	}
	return DefaultSettle
}

func (h *hostState) getMode() detailsMode {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mode
}

func (h *hostState) setMode(m detailsMode) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mode = m
}

// observe learns the server's clock from a response's Date header.
func (h *hostState) observe(resp *http.Response) {
	if t, ok := dateOf(resp); ok {
		h.mu.Lock()
		h.skew = time.Until(t)
		h.mu.Unlock()
	}
}

// now is the server's current time as far as this process can tell.
func (h *hostState) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Now().Add(h.skew)
}

func dateOf(resp *http.Response) (time.Time, bool) {
	if resp == nil {
		return time.Time{}, false
	}
	t, err := http.ParseTime(resp.Header.Get("Date"))
	return t, err == nil
}

// timeLeft is ctx's remaining time, or def when it has no deadline.
func timeLeft(ctx context.Context, def time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left > 0 {
			return left
		}
		return time.Millisecond
	}
	return def
}
