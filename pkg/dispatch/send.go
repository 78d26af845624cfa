package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
)

// checkKey looks, before a keyed dispatch is sent, for a run that already
// carries its key: the same key is the same dispatch.
func (d *Dispatcher) checkKey(ctx context.Context, c *ghclient.Client, req Request, s *State) (Step, error) {
	w := d.flow(c, req)
	if w == nil {
		return d.notSent(req, s, failure.Transient(errBusy))
	}
	host := d.host(c.Repo.APIBaseURL)
	now := d.clock().Now()
	server, _ := host.serverTime(now)
	floor := server.Add(-KeyLookback)
	l, complete, err := w.refresh(ctx, c, host, floor, now)
	if err != nil {
		return d.notSent(req, s, err)
	}
	v := PriorRun(s.Key, l.Runs)
	switch {
	case v.Refused:
		return d.fail(s, &AmbiguousError{Workflow: req.WorkflowFile, Candidates: d.results(c, v.Candidates), RunsPage: s.RunsPage, Reason: v.Reason, Key: s.Key, Before: true})
	case v.Run > 0:
		w.take(v.Run, s.Attempt, v.Method, now)
		d.found(c, s, v.Run, v.Method)
		withHead(s, l.Runs) // the listing that found it carries its commit
		return Step{}, nil
	case !complete:
		return d.fail(s, fmt.Errorf("cannot check that no run already carries key %s: the runs of %s on %s in the last %s are more than one listing holds; nothing was dispatched: check %s",
			s.Key, req.WorkflowFile, req.Ref, KeyLookback, s.RunsPage))
	}
	s.KeyCheckedAt = l.ServerNow
	if s.KeyCheckedAt.IsZero() {
		s.KeyCheckedAt = server
	}
	return Step{Message: fmt.Sprintf("no run of %s carries key %s yet; dispatching", req.WorkflowFile, s.Key)}, nil
}

// send posts the dispatch, once.
func (d *Dispatcher) send(ctx context.Context, c *ghclient.Client, req Request, s *State) (Step, error) {
	if err := req.validate(s); err != nil {
		return d.fail(s, err)
	}
	w := d.flow(c, req)
	if w == nil {
		return d.notSent(req, s, failure.Transient(errBusy))
	}
	release, err := w.acquire(ctx, s.Key != "", d.clock().Now())
	if err != nil {
		return d.notSent(req, s, err)
	}
	defer release()
	if !d.intents.swap(s.Attempt, intentRecorded, intentSending) {
		s.Phase, s.Uncertainty = PhaseSending, Restarted
		return Step{Message: "this dispatch was sent by another call already: looking for its run"}, nil
	}
	host := d.host(c.Repo.APIBaseURL)
	details, wrote, err := d.postFallingBack(ctx, c, host, req, s)
	maybe := err == nil || (wrote && !refused(err))
	if !maybe {
		d.intents.put(s.Attempt, intentRecorded)
		s.SentAt = time.Time{}
		return d.notSent(req, s, d.sendError(err, c, req))
	}
	if id := details.GetWorkflowRunID(); err == nil && id > 0 && s.KeyGiven {
		// A key the caller chose may be in use by another dispatcher at
		// once: the named run is taken once no second run carries it.
		w.take(id, s.Attempt, ByRunDetails, d.clock().Now())
		s.Phase, s.Named = PhaseSent, id
		return Step{Wait: FindInterval(0), Message: fmt.Sprintf("GitHub named run %d; checking that no other run carries key %s", id, s.Key)}, nil
	}
	if id := details.GetWorkflowRunID(); err == nil && id > 0 {
		w.take(id, s.Attempt, ByRunDetails, d.clock().Now())
		d.found(c, s, id, ByRunDetails)
		if !checkResultURLs(c, details.GetRunURL(), details.GetHTMLURL()) {
			return Step{Message: fmt.Sprintf("the dispatch answer named run URLs outside %s; using the URLs of run %d there", c.Repo.Host, id)}, nil
		}
		return Step{}, nil
	}
	if err != nil {
		// No hold: without a key, a dispatch that may not have reached
		// GitHub refuses any run it sees, so keeping others out gains it
		// nothing.
		s.Phase, s.Uncertainty = PhaseSending, LostAnswer
		return Step{Wait: FindInterval(0), Message: fmt.Sprintf("the answer to the dispatch of %s was lost (%s); GitHub may have started a run: looking for it, not dispatching again", req.WorkflowFile, ghclient.Describe(err))}, nil
	}
	s.Phase = PhaseSent
	if s.Key == "" {
		// Until this dispatch decides its run, a new run of the workflow
		// and ref could be its: no other dispatch without a key goes out.
		w.hold(s.Attempt, d.clock().Now().Add(d.decisionTime(req)))
	}
	return Step{Wait: FindInterval(0), Message: fmt.Sprintf("GitHub accepted the dispatch of %s on %s without naming the run; looking for it (up to %s)", req.WorkflowFile, req.Ref, req.Timeout)}, nil
}

// postFallingBack sends the dispatch the host's way, newest first, and
// steps back only on an answer refusing the version or the field: a 400,
// which GitHub did not act on, so sending again is safe. At most three
// tries, each way at most once; the way that was answered is remembered for the
// host and in s.
func (d *Dispatcher) postFallingBack(ctx context.Context, c *ghclient.Client, host *hostState, req Request, s *State) (*github.WorkflowDispatchRunDetails, bool, error) {
	api := dispatchAPI(host, c, s)
	tried := map[DispatchAPI]bool{}
	for {
		tried[api] = true
		details, wrote, err := d.post(ctx, c, host, req, s, api)
		next, ok := fallback(api, err, tried)
		if api == API2026 && (ok || err == nil || refused(err)) {
			c.LearnServes2026(!ok) // the answer came under 2026-03-10, or refused it
		}
		if !ok {
			if err == nil || refused(err) {
				host.setAPI(api)
				s.DispatchAPI = api
			}
			return details, wrote, err
		}
		api = next
	}
}

// post sends the request. It sets s.SentAt when the request starts to
// leave and, from the answer's Date, s.NotBefore. wrote reports whether any
// of the request reached a connection.
//
// The request is not cancelled by ctx (a dispatch stopped halfway is the
// one outcome nobody can tell apart); DefaultPostTimeout bounds it.
func (d *Dispatcher) post(ctx context.Context, c *ghclient.Client, host *hostState, req Request, s *State, api DispatchAPI) (*github.WorkflowDispatchRunDetails, bool, error) {
	timeout := d.PostTimeout
	if timeout <= 0 {
		timeout = DefaultPostTimeout
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	var wrote atomic.Bool
	pctx = ghclient.WithSentFlag(pctx, &wrote)
	s.SentAt = d.clock().Now()
	details, resp, err := postAs(pctx, c, req, s, api)
	if resp != nil {
		host.observe(resp.Response)
		// The Date was stamped after GitHub received the request.
		if date, ok := dateOf(resp.Response); ok {
			s.NotBefore = windowStart(s.SentAt, date, d.clock().Now())
			s.ReceivedBy = date.Add(wholeSecond)
		}
	}
	return details, wrote.Load() || err == nil, err
}

// notSent handles a try that provably sent nothing: a final refusal ends
// the dispatch; otherwise it is tried again, backed off, while its time
// lasts, and past that the error is transient (retrying whole is safe).
func (d *Dispatcher) notSent(req Request, s *State, err error) (Step, error) {
	// Only a refusal someone classified as final ends it: an error nobody
	// vouched for, before anything left, is tried again while time lasts.
	if failure.IsFinal(err) && !failure.Unclassified(err) && !ghclient.RateLimited(err) {
		return d.fail(s, err)
	}
	s.SendFailures++
	wait, limited := ghclient.RetryAfter(err)
	switch {
	case errors.Is(err, ErrHeld):
		wait = heldRetry
	case !limited:
		wait = backoff(s.SendFailures)
	}
	if now := d.clock().Now(); now.Add(wait).After(s.IntentAt.Add(req.Timeout)) {
		err = fmt.Errorf("%w; nothing was dispatched, so retrying is safe", err)
		if limited {
			return Step{}, failure.TransientUntil(err, now.Add(wait))
		}
		return Step{}, failure.Transient(err)
	}
	return Step{Wait: wait, Message: fmt.Sprintf("%v; nothing was dispatched; trying again in %s", err, wait.Round(time.Second))}, nil
}

// heldRetry is the pause of a dispatch held back by an earlier one of the
// same workflow and ref in this process.
const heldRetry = time.Second

// backoff is the pause after the n-th failed try: 1 s, 2 s, 4 s … up to
// maxBackoff.
func backoff(n int) time.Duration {
	return min(time.Second<<min(max(n-1, 0), 5), maxBackoff)
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

// sendError explains a dispatch GitHub refused or that never left; it keeps
// its class (a rate limit or a connection never made is transient).
func (d *Dispatcher) sendError(err error, c *ghclient.Client, req Request) error {
	action := fmt.Sprintf("dispatching workflow %s on %s in %s", req.WorkflowFile, req.Ref, c.Repo.FullName())
	if ghclient.NotSent(err) {
		return ghclient.ClassifyUnsent(err, action)
	}
	return ghclient.Classify(err, action, ghclient.Hints{
		NotFound:      notFoundHint(c, req.WorkflowFile),
		Unprocessable: unprocessableHint(err, req),
		Forbidden:     "the credentials need the actions:write permission (fine-grained token or GitHub App) or the repo scope (classic token)",
	})
}

func (r Request) validate(s *State) error {
	switch {
	case r.WorkflowFile == "" || strings.ContainsAny(r.WorkflowFile, "/\\?#%") || strings.Contains(r.WorkflowFile, ".."):
		return fmt.Errorf("dispatch request: workflow file %q must be a file name without path characters", r.WorkflowFile)
	case r.Ref == "":
		return errors.New("dispatch request: a ref is required")
	case r.CorrelationInput != "" && s.Key == "":
		return errors.New("dispatch request: a correlation input needs a key")
	case r.CorrelationInput != "" && r.Inputs[r.CorrelationInput] != "":
		return fmt.Errorf("dispatch request: input %q is set by the correlation key; remove it from the inputs", r.CorrelationInput)
	}
	return nil
}

// body is the inputs object sent, with the correlation key added.
func (r Request) body(s *State) map[string]any {
	if len(r.Inputs) == 0 && r.CorrelationInput == "" {
		return nil
	}
	in := make(map[string]any, len(r.Inputs)+1)
	for k, v := range r.Inputs {
		in[k] = v
	}
	if r.CorrelationInput != "" {
		in[r.CorrelationInput] = s.Key
	}
	return in
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
	case strings.Contains(msg, "only define up to"): // GHES 3.20 and older take 10 inputs
		return "this server takes fewer inputs than sent (a correlationInput is one more); send fewer"
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

// checkResultURLs reports whether run URLs from an answer are on the
// repository's hosts: text from the server is shown to people and passed
// to later steps, so URLs elsewhere are replaced by ones built here.
func checkResultURLs(c *ghclient.Client, runURL, htmlURL string) bool {
	ok := func(u, base string) bool { return u == "" || ghclient.UnderBase(u, base) }
	return ok(runURL, c.Repo.APIBaseURL) && ok(htmlURL, c.Repo.WebURL())
}
