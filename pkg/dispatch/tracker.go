package dispatch

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/repourl"
)

const (
	// listingWindow is how far back, in server time, run listings reach when
	// a new series of dispatches starts. It only bounds the listing: runs
	// are told apart by the baseline, not by time.
	listingWindow = 2 * time.Minute
	// acceptanceSlack allows for GitHub creating a run during the request,
	// before the Date of its answer was stamped (both have 1 s resolution).
	acceptanceSlack = 5 * time.Second
	// minListGap keeps concurrent waiters on one workflow and ref to one
	// listing at a time; they share its result.
	minListGap = 200 * time.Millisecond
	// abandonedTTL is how long a dispatch whose waiter gave up keeps its
	// place in line, so that its late run is not handed to the next one.
	abandonedTTL = 10 * time.Minute
	// knownTTL bounds the memory of runs seen: older ones fall out of the
	// listing window anyway.
	knownTTL = 30 * time.Minute
	// perPage is GitHub's maximum page size for run listings.
	perPage = 100
	// maxListPages bounds one listing (10,000 runs in two minutes would be
	// far beyond GitHub's own dispatch rate limits).
	maxListPages = 100
)

// pollInterval is the pause between listings while waiting for a run: runs
// usually appear within seconds, so look often at first (answers that did
// not change cost no rate limit, see refresh), then back off.
func pollInterval(waited time.Duration) time.Duration {
	switch {
	case waited < 10*time.Second:
		return 250 * time.Millisecond
	case waited < 30*time.Second:
		return time.Second
	default:
		return 2 * time.Second
	}
}

// runTracker finds the runs of one workflow and ref for the dispatches of
// this process.
//
// GitHub's run listing does not say which dispatch created a run, so runs
// are told apart by order and by memory:
//   - Dispatches of one workflow and ref are sent one at a time (mu), and
//     GitHub creates their runs in the order it accepted them, so the k-th
//     new run belongs to the k-th dispatch still waiting.
//   - Before a dispatch that may not be named by GitHub, the current runs
//     are listed (the baseline) and remembered as nobody's (known), as is
//     every run handed out, so no run is given twice or taken from before.
//
// Between processes none of this holds: another process dispatching the
// same workflow and ref at the same moment can take this one's run. GitHub
// naming the run (return_run_details) is the only exact answer.
type runTracker struct {
	repo         repourl.Repository
	workflowFile string
	branch       string

	// post lets one dispatch of this workflow and ref go out at a time (a
	// one-slot semaphore, so a waiter can give up when its context ends).
	post     chan struct{}
	mu       sync.Mutex
	known    map[int64]time.Time
	queue    []*pendingDispatch
	floor    time.Time
	etag     string
	etagURL  string
	lastList time.Time
	listings int
}

type pendingDispatch struct {
	acceptedAt time.Time
	// notBefore: a run created before this (server time) is not this
	// dispatch's.
	notBefore time.Time
	run       *github.WorkflowRun
	done      chan struct{}
	abandoned bool
}

func newRunTracker(repo repourl.Repository, workflowFile, branch string) *runTracker {
	return &runTracker{repo: repo, workflowFile: workflowFile, branch: branch, known: map[int64]time.Time{}, post: make(chan struct{}, 1)}
}

func (t *runTracker) acquirePost(ctx context.Context) error {
	select {
	case t.post <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *runTracker) releasePost() { <-t.post }

// claim records a run GitHub named for one of this process's dispatches.
func (t *runTracker) claim(id int64) { t.known[id] = time.Now() }

func (t *runTracker) enqueue(p *pendingDispatch) { t.queue = append(t.queue, p) }

// refresh lists the workflow's recent runs and hands new ones to the waiting
// dispatches in order; new runs nobody waits for are remembered as foreign.
// t.mu is held.
func (t *runTracker) refresh(ctx context.Context, c *ghclient.Client, host *hostState) error {
	t.prune()
	if t.nextWaiting() == nil {
		// A new series: start a fresh listing window.
		t.floor = host.now().Add(-listingWindow).Truncate(time.Second)
	}
	runs, err := t.list(ctx, c, host)
	t.lastList = time.Now()
	if err != nil || runs == nil {
		return err
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].GetID() < runs[j].GetID() })
	for _, run := range runs {
		if _, seen := t.known[run.GetID()]; seen {
			continue
		}
		t.known[run.GetID()] = time.Now()
		if p := t.nextWaiting(); p != nil && !run.GetCreatedAt().Time.Before(p.notBefore) {
			p.run = run
			close(p.done)
		}
	}
	return nil
}

// nextWaiting is the oldest dispatch still waiting for its run, or nil.
func (t *runTracker) nextWaiting() *pendingDispatch {
	for _, p := range t.queue {
		if p.run == nil {
			return p
		}
	}
	return nil
}

// prune drops settled dispatches from the head of the line, long-abandoned
// ones, and runs remembered for longer than any listing reaches back.
func (t *runTracker) prune() {
	keep := t.queue[:0]
	for _, p := range t.queue {
		if p.run != nil || (p.abandoned && time.Since(p.acceptedAt) > abandonedTTL) {
			continue
		}
		keep = append(keep, p)
	}
	t.queue = keep
	for id, seen := range t.known {
		if time.Since(seen) > knownTTL {
			delete(t.known, id)
		}
	}
}

// list returns the workflow_dispatch runs on the branch created since the
// window's floor, or nil when nothing changed. The first page is a
// conditional request: GitHub answers 304 when it is unchanged, and a 304
// does not count against the rate limit.
func (t *runTracker) list(ctx context.Context, c *ghclient.Client, host *hostState) ([]*github.WorkflowRun, error) {
	var all []*github.WorkflowRun
	for page := 1; page <= maxListPages; page++ {
		q := url.Values{}
		q.Set("event", "workflow_dispatch")
		q.Set("branch", t.branch)
		q.Set("created", ">="+t.floor.UTC().Format(time.RFC3339))
		q.Set("per_page", fmt.Sprint(perPage))
		q.Set("exclude_pull_requests", "true")
		if page > 1 {
			q.Set("page", fmt.Sprint(page))
		}
		u := fmt.Sprintf("repos/%s/%s/actions/workflows/%s/runs?%s",
			url.PathEscape(c.Repo.Owner), url.PathEscape(c.Repo.Name), url.PathEscape(t.workflowFile), q.Encode())
		req, err := c.NewRequest(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		if page == 1 && t.etag != "" && t.etagURL == u {
			req.Header.Set("If-None-Match", t.etag)
		}
		var runs github.WorkflowRuns
		resp, err := c.Do(req, &runs)
		if resp != nil {
			host.observe(resp.Response)
		}
		t.listings++
		if page == 1 && ghclient.StatusCode(err) == http.StatusNotModified {
			return nil, nil
		}
		if err != nil {
			return nil, ghclient.Classify(err, fmt.Sprintf("listing runs of workflow %s on %s in %s", t.workflowFile, t.branch, c.Repo.FullName()), ghclient.Hints{
				Forbidden: "the credentials need the actions:read permission",
				NotFound:  notFoundHint(c, t.workflowFile),
			})
		}
		if page == 1 {
			t.etag, t.etagURL = resp.Header.Get("ETag"), u
		}
		all = append(all, runs.WorkflowRuns...)
		if resp.NextPage == 0 || len(runs.WorkflowRuns) == 0 {
			return all, nil
		}
	}
	return all, nil
}

// await waits up to window for p's run, listing runs while it waits. When
// it gives up, abandon keeps p in line so that its run, arriving late, is
// not handed to the next dispatch; without it (a dispatch whose answer was
// lost, about to be sent again) p leaves the line.
func (t *runTracker) await(ctx context.Context, c *ghclient.Client, host *hostState, p *pendingDispatch, req Request, window time.Duration, abandon bool) (*Result, error) {
	deadline := time.NewTimer(time.Until(p.acceptedAt.Add(window)))
	defer deadline.Stop()
	var lastErr error
	fail := func(err error) (*Result, error) {
		if err := t.giveUp(p, err, abandon); err != nil {
			return nil, err
		}
		return t.result(p), nil // the run arrived as the wait ended
	}
	for {
		wait := time.NewTimer(pollInterval(time.Since(p.acceptedAt)))
		select {
		case <-p.done:
			wait.Stop()
			return t.result(p), nil
		case <-ctx.Done():
			wait.Stop()
			return fail(fmt.Errorf("stopped while waiting for the run of the dispatched workflow %s: %w", req.WorkflowFile, ctx.Err()))
		case <-deadline.C:
			wait.Stop()
			return fail(t.timeoutError(req, window, lastErr))
		case <-wait.C:
		}
		t.mu.Lock()
		if p.run == nil && time.Since(t.lastList) >= minListGap {
			lastErr = t.refresh(ctx, c, host)
		}
		t.mu.Unlock()
		if lastErr != nil && failure.IsFinal(lastErr) && ctx.Err() == nil {
			return fail(fmt.Errorf("the workflow was dispatched, but its run cannot be looked up: %w", lastErr))
		}
	}
}

func (t *runTracker) result(p *pendingDispatch) *Result {
	return &Result{RunID: p.run.GetID(), RunURL: p.run.GetURL(), HTMLURL: p.run.GetHTMLURL(), Method: ByRunListing}
}

// giveUp ends the wait for p unless its run arrived meanwhile: p stays in
// line, abandoned, or leaves it. The dispatch was sent, so every error from
// here on is final: retrying would start a second run.
func (t *runTracker) giveUp(p *pendingDispatch, err error, abandon bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.run != nil {
		return nil
	}
	if abandon {
		p.abandoned = true
	} else {
		for i, q := range t.queue {
			if q == p {
				t.queue = append(t.queue[:i:i], t.queue[i+1:]...)
				break
			}
		}
	}
	return failure.Final(err)
}

func (t *runTracker) timeoutError(req Request, window time.Duration, lastErr error) error {
	t.mu.Lock()
	seen, listings := len(t.known), t.listings
	t.mu.Unlock()
	msg := fmt.Sprintf("GitHub accepted the dispatch of %s on %s, but no new workflow_dispatch run appeared within %s "+
		"(%d listings; %d runs seen, all older than the dispatch or taken by other dispatches of this process); "+
		"the run may still start: check %s/actions/workflows/%s before dispatching again",
		req.WorkflowFile, req.Ref, window, listings, seen, t.repo.WebURL(), req.WorkflowFile)
	if lastErr != nil {
		msg += "; last listing error: " + lastErr.Error()
	}
	return fmt.Errorf("%s", msg)
}
