package dispatch

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
)

const (
	// perPage is GitHub's maximum page size for run listings.
	perPage = 100
	// maxListPages bounds one listing: 1,000 runs of one workflow and ref
	// in one window is far beyond GitHub's dispatch rate limits. A listing
	// cut there is marked incomplete, and no "only new run" is read from it.
	maxListPages = 10
	// minListGap lets concurrent dispatches of one workflow and ref share a
	// listing instead of each sending its own.
	minListGap = 250 * time.Millisecond
	// claimAge: a run taken by a dispatch of this process is remembered
	// this long, far longer than any window it could fall into.
	claimAge = 2 * time.Hour
	// maxSharedSpan bounds how far back a shared listing reaches to serve
	// a dispatch with an earlier window than the current one's.
	maxSharedSpan = 10 * time.Minute
)

// workflowRuns follows the runs of one workflow and ref for this process:
// one conditional listing shared by every dispatch looking for its run,
// the runs those dispatches took, and the gate that lets one dispatch of
// the workflow and ref out at a time.
type workflowRuns struct {
	workflow string
	branch   string

	// post lets one dispatch without a key of this workflow and ref go out
	// at a time (a one-slot semaphore: a waiter can give up when its
	// context ends).
	post chan struct{}

	mu sync.Mutex
	// holds are dispatches without a key still deciding their run, by
	// attempt, with the local time the hold ends: until then a new run of
	// the workflow and ref could be theirs, so no other dispatch without a
	// key is sent.
	holds map[string]time.Time
	// claims are runs taken by this process's dispatches: run → attempt,
	// with when it was taken.
	claims map[int64]claim
	// The last listing: its runs, its Date, the floor it was asked from,
	// whether it was cut short, and its ETag for the next conditional ask.
	runs       []ListedRun
	sharedRuns []ListedRun // the last runs the shared listing gave (shared.go)
	serverNow  time.Time
	floor      time.Time
	incomplete bool
	listedAt   time.Time
	listErr    error
	etag       string
	etagURL    string
}

type claim struct {
	attempt string
	method  Method
	at      time.Time
}

func newWorkflowRuns(workflow, branch string) *workflowRuns {
	return &workflowRuns{workflow: workflow, branch: branch, post: make(chan struct{}, 1),
		holds: map[string]time.Time{}, claims: map[int64]claim{}}
}

// idle reports whether forgetting w loses nothing: no hold, no recent claim.
func (w *workflowRuns) idle(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expire(now)
	return len(w.holds) == 0 && len(w.claims) == 0 && len(w.post) == 0
}

func (w *workflowRuns) expire(now time.Time) {
	for id, until := range w.holds {
		if now.After(until) {
			delete(w.holds, id)
		}
	}
	for run, c := range w.claims {
		if now.Sub(c.at) > claimAge {
			delete(w.claims, run)
		}
	}
}

// acquire takes the right to send a dispatch of this workflow and ref.
// Dispatches without a key go out one at a time, and not while a held one
// is deciding its run (ErrHeld): each one's answer (and hold) is known
// before the next leaves, so their windows never overlap. A keyed dispatch
// is told apart by its key and goes out at once. The caller must call
// release.
func (w *workflowRuns) acquire(ctx context.Context, keyed bool, now time.Time) (release func(), err error) {
	if keyed {
		return func() {}, nil
	}
	select {
	case w.post <- struct{}{}:
	case <-ctx.Done():
		return nil, failure.Transient(fmt.Errorf("waiting to send the dispatch of %s: another dispatch of it is being sent: %w; nothing was sent", w.workflow, ctx.Err()))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expire(now)
	if len(w.holds) > 0 {
		<-w.post
		return nil, failure.Transient(ErrHeld)
	}
	return func() { <-w.post }, nil
}

// hold keeps other dispatches without a key from being sent until attempt
// decides its run or until passes.
func (w *workflowRuns) hold(attempt string, until time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cur, ok := w.holds[attempt]; !ok || until.After(cur) {
		w.holds[attempt] = until
	}
}

func (w *workflowRuns) unhold(attempt string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.holds, attempt)
}

// take records that attempt took run.
func (w *workflowRuns) take(run int64, attempt string, how Method, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.claims[run] = claim{attempt: attempt, method: how, at: now}
	delete(w.holds, attempt)
}

// takenBy is the run attempt took, if any, and how.
func (w *workflowRuns) takenBy(attempt string) (int64, Method, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for run, c := range w.claims {
		if c.attempt == attempt {
			return run, c.method, true
		}
	}
	return 0, "", false
}

// claimedByOthers reports runs taken by dispatches other than attempt.
func (w *workflowRuns) claimedByOthers(attempt string) func(int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	other := map[int64]bool{}
	for run, c := range w.claims {
		if c.attempt != attempt {
			other[run] = true
		}
	}
	return func(id int64) bool { return other[id] }
}

// refresh returns the workflow's runs created from floor on (server clock),
// and whether that listing is complete for floor: the workflow's shared
// listing when it reaches back before floor (shared.go), else this
// search's own, filtered: one shared with other searches when it is fresh
// enough and covers floor, else a new one, which
// replaces the last (what is kept is one listing's runs: at most
// maxListPages pages). Listing and answer are read under one lock, so no
// other caller's listing can come between them.
func (w *workflowRuns) refresh(ctx context.Context, c *ghclient.Client, host *hostState, floor, now time.Time) (Listing, bool, error) {
	floor = floor.Truncate(time.Second)
	if l, ok, err := w.fromShared(ctx, c, host, floor, now); ok {
		return l, err == nil, err // shared.go
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	covers := !w.listedAt.IsZero() && !floor.Before(w.floor) && (!w.incomplete || floor.Equal(w.floor))
	if now.Sub(w.listedAt) < minListGap && covers {
		return w.snapshot(), w.complete(floor), w.listErr
	}
	if !w.floor.IsZero() && w.floor.Before(floor) && !w.incomplete && w.serverNow.Sub(w.floor) < maxSharedSpan {
		floor = w.floor // the wider listing serves both, and its ETag stands
	}
	runs, date, incomplete, changed, err := w.list(ctx, c, host, floor)
	if err != nil {
		w.etag = "" // the runs kept are not the listing the ETag names
		if ctx.Err() == nil {
			w.listedAt, w.listErr = now, err // a caller's own cancellation is not shared
		}
		return Listing{}, false, err
	}
	w.listedAt, w.listErr, w.serverNow = now, nil, date
	if changed {
		w.runs, w.floor, w.incomplete = runs, floor, incomplete
	}
	return w.snapshot(), w.complete(floor), nil
}

func (w *workflowRuns) snapshot() Listing {
	return Listing{Runs: w.runs, ServerNow: w.serverNow}
}

func (w *workflowRuns) complete(floor time.Time) bool {
	return !w.incomplete && !floor.Before(w.floor)
}

// list returns the workflow_dispatch runs of the workflow and branch
// created since floor that check out (see valid), the first page's Date,
// whether pages were left unread, and whether anything changed: the first
// page is a conditional request, and while the listing is unchanged GitHub
// answers 304, which costs no rate limit.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow
func (w *workflowRuns) list(ctx context.Context, c *ghclient.Client, host *hostState, floor time.Time) (runs []ListedRun, date time.Time, incomplete, changed bool, err error) {
	var etag, etagURL string
	done := func(incomplete bool) ([]ListedRun, time.Time, bool, bool, error) {
		// Only a listing read whole may answer the next conditional ask.
		w.etag, w.etagURL = etag, etagURL
		return runs, date, incomplete, true, nil
	}
	for page := 1; page <= maxListPages; page++ {
		u := w.listURL(c, floor, page)
		req, err := c.NewRequest(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, date, false, false, err
		}
		if page == 1 && w.etag != "" && w.etagURL == u {
			req.Header.Set("If-None-Match", w.etag)
		}
		var body github.WorkflowRuns
		resp, err := c.Do(req, &body)
		if resp != nil {
			host.observe(resp.Response)
			if page == 1 {
				date, _ = dateOf(resp.Response)
			}
		}
		if page == 1 && ghclient.StatusCode(err) == http.StatusNotModified {
			return nil, date, false, false, nil
		}
		if err != nil {
			return nil, date, false, false, ghclient.Classify(err, fmt.Sprintf("listing runs of workflow %s on %s in %s", w.workflow, w.branch, c.Repo.FullName()), ghclient.Hints{
				Forbidden: "the credentials need the actions:read permission",
				NotFound:  notFoundHint(c, w.workflow),
			})
		}
		if page == 1 {
			etag, etagURL = resp.Header.Get("ETag"), u
		}
		for _, run := range body.WorkflowRuns {
			if w.valid(c, run) {
				runs = append(runs, listed(run))
			}
		}
		if resp.NextPage == 0 || len(body.WorkflowRuns) == 0 {
			return done(false)
		}
	}
	return done(true)
}

func (w *workflowRuns) listURL(c *ghclient.Client, floor time.Time, page int) string {
	q := url.Values{}
	q.Set("event", "workflow_dispatch")
	q.Set("branch", w.branch)
	q.Set("created", ">="+floor.UTC().Format(time.RFC3339))
	q.Set("per_page", fmt.Sprint(perPage))
	q.Set("exclude_pull_requests", "true")
	if page > 1 {
		q.Set("page", fmt.Sprint(page))
	}
	return fmt.Sprintf("repos/%s/%s/actions/workflows/%s/runs?%s",
		url.PathEscape(c.Repo.Owner), url.PathEscape(c.Repo.Name), url.PathEscape(w.workflow), q.Encode())
}

// valid checks a listed run against what was asked for: a server that
// ignores its filters must not hand over another repository's, workflow's,
// branch's or event's run.
func (w *workflowRuns) valid(c *ghclient.Client, run *github.WorkflowRun) bool {
	path := strings.SplitN(run.GetPath(), "@", 2)[0]
	return run.GetID() > 0 &&
		run.GetEvent() == "workflow_dispatch" &&
		run.GetHeadBranch() == w.branch &&
		(path == "" || path == ".github/workflows/"+w.workflow) &&
		(run.GetRepository() == nil || strings.EqualFold(run.GetRepository().GetFullName(), c.Repo.FullName())) &&
		!run.GetCreatedAt().Time.IsZero()
}

// listed keeps what attribution reads of a run, and nothing else, so that
// what a listing leaves in memory is small whatever the server sent.
func listed(run *github.WorkflowRun) ListedRun {
	actor := run.GetActor().GetLogin()
	if a := run.GetTriggeringActor(); a != nil {
		actor = a.GetLogin()
	}
	title := run.GetDisplayTitle()
	if len(title) > maxTitle {
		title = title[:maxTitle]
	}
	sha, branch := HeadOf(run)
	return ListedRun{ID: run.GetID(), Created: run.GetCreatedAt().Time, Title: title, Actor: actor, HeadSHA: sha, HeadBranch: branch}
}

// maxTitle: GitHub cuts run titles far shorter; a longer one is hostile.
const maxTitle = 1024
