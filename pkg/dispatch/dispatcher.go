// Package dispatch starts GitHub Actions workflows with the
// workflow_dispatch event and finds the run each dispatch created.
//
// GitHub names the run in its answer when asked to (return_run_details,
// github.com and GHES 3.21+): one request. Otherwise (a 204 answer, or an
// older GHES that refuses the field) the run is found by listing the
// workflow's runs; see runTracker for how runs are told apart.
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

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/pkg/config"
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
	// Timeout bounds the wait for the run to appear when GitHub does not
	// name it in its answer.
	Timeout time.Duration
}

// How a dispatch learned its run.
const (
	// ByRunDetails: GitHub named the run in its answer to the dispatch.
	ByRunDetails = "run-details"
	// ByRunListing: the run was found by listing the workflow's runs.
	ByRunListing = "run-listing"
)

// Result is the run a dispatch created.
type Result struct {
	RunID   int64
	RunURL  string
	HTMLURL string
	// Method is ByRunDetails or ByRunListing.
	Method string
}

// Dispatcher dispatches workflows. One Dispatcher must serve every dispatch
// of a process: it is what keeps concurrent dispatches of the same workflow
// and ref from taking each other's runs. It is safe for concurrent use.
type Dispatcher struct {
	// Logf, when set, receives progress messages for people.
	Logf func(format string, args ...any)
	// AdoptWindow overrides how long to look for the run of a dispatch
	// whose answer was lost (default 30 s).
	AdoptWindow time.Duration

	mu       sync.Mutex
	trackers map[string]*runTracker
	hosts    map[string]*hostState
}

// hostState remembers what an API host does with return_run_details.
type hostState struct {
	mu   sync.Mutex
	mode detailsMode
	skew time.Duration // server clock minus local clock, from Date headers
}

type detailsMode int

const (
	modeUnknown   detailsMode = iota
	modeDetails               // answers 200 with the run
	modeNoDetails             // accepts the field, answers 204
	modeNoField               // refuses the field (GHES 3.20 and older)
)

// Default is the process-wide Dispatcher used by the command line and the
// Kargo steps.
var Default = &Dispatcher{}

const (
	// adoptWindow is how long to look for the run of a dispatch whose
	// answer was lost (a 5xx, a reset) before dispatching once more. Runs
	// appear within seconds; a run that takes longer may be doubled, which
	// is the price of not giving up on a dispatch that never reached GitHub.
	adoptWindow = 30 * time.Second
	// postBudget is the time allowed for sending the dispatch itself,
	// rate-limit waits included, on top of the time to find its run.
	postBudget = 30 * time.Second
)

// Dispatch sends the workflow_dispatch event and returns the run it created.
// It never sends the event twice for a run that may exist: a dispatch is
// repeated only when the request provably never reached GitHub, or when,
// after a lost answer, no run of it appeared within the adoption window.
// Every error after GitHub may have acted is final, and says so.
func (d *Dispatcher) Dispatch(ctx context.Context, c *ghclient.Client, req Request) (*Result, error) {
	if req.WorkflowFile == "" || strings.ContainsAny(req.WorkflowFile, "/\\?#%") || req.Ref == "" {
		return nil, failure.Final(fmt.Errorf("dispatch request needs a workflow file name without path characters and a ref"))
	}
	if req.Timeout <= 0 {
		req.Timeout = config.DefaultRunTimeout
	}
	// The step's time budget: rate-limit waits and retries stay inside it.
	ctx, cancel := context.WithTimeout(ctx, req.Timeout+postBudget)
	defer cancel()
	host := d.host(c.Repo.APIBaseURL)
	t := d.tracker(c, req)
	window := d.AdoptWindow
	if window <= 0 {
		window = adoptWindow
	}
	var lost error
	for attempt := 1; attempt <= 2; attempt++ {
		if err := t.acquirePost(ctx); err != nil {
			return nil, failure.Transient(fmt.Errorf("waiting to dispatch %s: %w", req.WorkflowFile, err))
		}
		t.mu.Lock()
		p, res, err := d.send(ctx, c, host, t, req)
		t.mu.Unlock()
		switch {
		case res != nil:
			t.releasePost()
			return res, nil
		case err == nil:
			t.releasePost()
			d.logf("GitHub accepted the dispatch without naming the run; looking for the run of %s on %s (up to %s)", req.WorkflowFile, req.Ref, req.Timeout)
			return t.await(ctx, c, host, p, req, req.Timeout, true)
		case p == nil:
			t.releasePost()
			return nil, err
		}
		// The answer was lost: GitHub may or may not have started a run.
		// Until it is known, no other dispatch of this workflow and ref goes
		// out: if two dispatches with lost answers waited at once, the run of
		// one could be taken by the other, whose request never reached GitHub.
		lost = err
		d.logf("the dispatch of %s failed after it was sent (%v); looking for its run for %s before dispatching again", req.WorkflowFile, err, window)
		res, werr := t.await(ctx, c, host, p, req, window, false)
		t.releasePost()
		if werr == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, dispatchError(lost, c, req)
}

// send takes the baseline when needed and posts the dispatch; t.mu is held.
// It returns either the run (GitHub named it) or the pending dispatch whose
// run must be found by listing.
func (d *Dispatcher) send(ctx context.Context, c *ghclient.Client, host *hostState, t *runTracker, req Request) (*pendingDispatch, *Result, error) {
	mode := host.getMode()
	baselined := false
	if needsBaseline(mode, c) {
		if err := t.refresh(ctx, c, host); err != nil {
			return nil, nil, err // nothing was dispatched yet
		}
		baselined = true
	}
	sentAt := host.now()
	details, resp, err := post(ctx, c, req, mode != modeNoField)
	if err != nil && mode != modeNoField && refusesRunDetails(err) {
		// GHES 3.20 and older refuse the field with a 400 and do not
		// dispatch; dispatching again without it is safe.
		host.setMode(modeNoField)
		d.logf("%s does not support return_run_details; dispatching without it", c.Repo.Host)
		if !baselined {
			if err := t.refresh(ctx, c, host); err != nil {
				return nil, nil, err
			}
			baselined = true
		}
		details, resp, err = post(ctx, c, req, false)
	}
	if resp != nil {
		host.observe(resp.Response)
	}
	if err != nil && lostAnswer(err) {
		// GitHub may have acted: wait for a run created from now on.
		p := &pendingDispatch{acceptedAt: time.Now(), notBefore: sentAt.Add(-acceptanceSlack), done: make(chan struct{})}
		t.enqueue(p)
		return p, nil, err
	}
	if err != nil {
		return nil, nil, dispatchError(err, c, req)
	}
	if id := details.GetWorkflowRunID(); id > 0 {
		host.setModeIf(modeUnknown, modeDetails)
		t.claim(id)
		return nil, &Result{RunID: id, RunURL: details.GetRunURL(), HTMLURL: details.GetHTMLURL(), Method: ByRunDetails}, nil
	}
	p := &pendingDispatch{acceptedAt: time.Now(), done: make(chan struct{})}
	if resp != nil {
		p.notBefore = serverTime(resp.Response).Add(-acceptanceSlack)
	}
	if !baselined {
		// A host that named runs before answered 204 this time: no baseline
		// was taken, so only runs created around this answer can be ours,
		// and the next dispatch takes a baseline again.
		host.setMode(modeUnknown)
	} else {
		host.setModeIf(modeUnknown, modeNoDetails)
	}
	t.enqueue(p)
	return p, nil, nil
}

// needsBaseline says whether to list runs before dispatching. Hosts known to
// name runs need none; github.com and GHE.com name runs since 2026-02, so a
// first dispatch there goes without (one request, not two). Enterprise
// Servers of unknown version, and hosts known not to name runs, get one.
func needsBaseline(mode detailsMode, c *ghclient.Client) bool {
	switch mode {
	case modeDetails:
		return false
	case modeUnknown:
		return c.Repo.Enterprise
	}
	return true
}

// notFoundHint explains a 404 from the workflow's endpoints.
func notFoundHint(c *ghclient.Client, workflowFile string) string {
	return fmt.Sprintf("check that .github/workflows/%s exists in %s and that the credentials can see the repository (a token without access gets 404, not 403)",
		workflowFile, c.Repo.WebURL())
}

// post sends the dispatch. The body carries return_run_details only when
// asked, because older servers refuse unknown fields.
func post(ctx context.Context, c *ghclient.Client, req Request, runDetails bool) (*github.WorkflowDispatchRunDetails, *github.Response, error) {
	body := github.CreateWorkflowDispatchEventRequest{Ref: req.Ref}
	if len(req.Inputs) > 0 {
		body.Inputs = make(map[string]any, len(req.Inputs))
		for k, v := range req.Inputs {
			body.Inputs[k] = v
		}
	}
	if runDetails {
		body.ReturnRunDetails = github.Ptr(true)
	}
	u := fmt.Sprintf("repos/%s/%s/actions/workflows/%s/dispatches",
		url.PathEscape(c.Repo.Owner), url.PathEscape(c.Repo.Name), url.PathEscape(req.WorkflowFile))
	httpReq, err := c.NewRequest(ctx, http.MethodPost, u, body)
	if err != nil {
		return nil, nil, err
	}
	var details *github.WorkflowDispatchRunDetails
	resp, err := c.Do(httpReq, &details)
	return details, resp, err
}

// refusesRunDetails recognises an older server refusing return_run_details
// ("return_run_details is not a permitted key").
func refusesRunDetails(err error) bool {
	code := ghclient.StatusCode(err)
	return (code == http.StatusBadRequest || code == http.StatusUnprocessableEntity) &&
		strings.Contains(ghclient.ErrorMessage(err), "return_run_details")
}

// dispatchError explains a refused dispatch. A failure that may have
// happened after GitHub acted (a 5xx, a reset connection, a timeout) is made
// final: retrying could start a second run.
func dispatchError(err error, c *ghclient.Client, req Request) error {
	action := fmt.Sprintf("dispatching workflow %s on %s in %s", req.WorkflowFile, req.Ref, c.Repo.FullName())
	classified := ghclient.Classify(err, action, ghclient.Hints{
		NotFound:      notFoundHint(c, req.WorkflowFile),
		Unprocessable: unprocessableHint(err, req),
		Forbidden:     "the credentials need the actions:write permission (fine-grained token or GitHub App) or the repo scope (classic token)",
	})
	if lostAnswer(err) {
		return failure.Final(fmt.Errorf("%w; GitHub may have started a run anyway, and none appeared in time, so it is not dispatched again: check %s/actions before retrying",
			classified, c.Repo.WebURL()))
	}
	return classified
}

// lostAnswer reports a failure after the dispatch may have reached GitHub:
// a 5xx answer, or a connection cut or timed out after sending. Refusals
// (4xx, rate limits) and connections never made are not: GitHub did not act.
func lostAnswer(err error) bool {
	if ghclient.NotSent(err) || errors.Is(err, context.Canceled) {
		return false
	}
	var rl *github.RateLimitError
	var arl *github.AbuseRateLimitError
	if errors.As(err, &rl) || errors.As(err, &arl) {
		return false
	}
	code := ghclient.StatusCode(err)
	if code == 0 {
		var er *github.ErrorResponse
		var te *ghclient.TokenError
		return !errors.As(err, &er) && !errors.As(err, &te)
	}
	return code >= 500
}

func unprocessableHint(err error, req Request) string {
	msg := ghclient.ErrorMessage(err)
	switch {
	case strings.Contains(msg, "workflow_dispatch"):
		return fmt.Sprintf("the workflow file at ref %q has no 'on: workflow_dispatch' trigger; check the ref, or add the trigger on that branch", req.Ref)
	case strings.Contains(msg, "Unexpected inputs"):
		return "the workflow does not declare these inputs under on.workflow_dispatch.inputs at that ref; remove them from the step or declare them"
	case strings.Contains(msg, "No ref found"):
		return fmt.Sprintf("no branch or tag %q exists in the repository", req.Ref)
	}
	return ""
}

func (d *Dispatcher) host(apiBase string) *hostState {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hosts == nil {
		d.hosts = map[string]*hostState{}
	}
	h, ok := d.hosts[apiBase]
	if !ok {
		h = &hostState{}
		d.hosts[apiBase] = h
	}
	return h
}

func (d *Dispatcher) tracker(c *ghclient.Client, req Request) *runTracker {
	branch := strings.TrimPrefix(strings.TrimPrefix(req.Ref, "refs/heads/"), "refs/tags/")
	key := c.Repo.APIBaseURL + "|" + strings.ToLower(c.Repo.FullName()) + "|" + req.WorkflowFile + "|" + branch
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.trackers == nil {
		d.trackers = map[string]*runTracker{}
	}
	t, ok := d.trackers[key]
	if !ok {
		t = newRunTracker(c.Repo, req.WorkflowFile, branch)
		d.trackers[key] = t
	}
	return t
}

func (d *Dispatcher) logf(format string, args ...any) {
	if d.Logf != nil {
		d.Logf(format, args...)
	}
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

func (h *hostState) setModeIf(from, to detailsMode) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mode == from {
		h.mode = to
	}
}

// observe learns the server's clock from a response's Date header.
func (h *hostState) observe(resp *http.Response) {
	if resp == nil {
		return
	}
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
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

func serverTime(resp *http.Response) time.Time {
	if resp != nil {
		if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			return t
		}
	}
	return time.Now()
}
