package wait

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
)

// Shared listings: a process waiting on many runs of one workflow reads
// them all from one conditional listing of the workflow's most recent runs
// (status, conclusion and attempt of up to 100 in one answer, a 304 while
// none changed) instead of one request per run, so that what waiting costs
// grows with the workflows, not the runs.
//
// A run is read on its own (GET /actions/runs/{id}) when:
//   - it has not been read yet: that first read names its workflow;
//   - it is the only run of its workflow this process follows: the per-run
//     read costs the same and its 304 carries less;
//   - the listing does not show it (it left the first page);
//   - the listing shows it completed: the final answer (conclusion,
//     attempt) is read from the run itself, once;
//   - the listing was refused (a 4xx other than a rate limit): the per-run
//     read has its own errors and hints. A rate limit or an outage (5xx,
//     network) is the check's error instead, as a per-run read's would be:
//     reading every run on its own then would multiply the requests just
//     when GitHub asks for fewer;
//   - the host answers listings without an ETag (so never 304) but runs
//     with one: each listing would cost the primary budget every time,
//     while the per-run reads, unchanged, cost none.
const (
	// DefaultListingAge is how old a shared listing may be and still
	// answer a check: half the default poll interval, so that a check
	// every 10 s sees a state at most 5 s older than a per-run read would,
	// and one workflow costs at most 12 listings a minute however many of
	// its runs are followed.
	DefaultListingAge = 5 * time.Second
	// followAge: a run not checked for this long no longer counts as
	// followed (its promotion ended or was deleted without a last check).
	followAge = 5 * time.Minute
	// maxListings bounds the workflows followed; beyond it they start
	// afresh (the per-run reads carry on meanwhile).
	maxListings = 1000
)

// listings are a Checker's shared workflow listings.
type listings struct {
	mu sync.Mutex
	m  map[string]*workflowListing
}

// workflowListing is the last listing of one workflow's recent runs and the
// runs this process follows through it.
type workflowListing struct {
	workflow string // file name, or ID when the run named no path

	mu   sync.Mutex
	runs map[int64]*github.WorkflowRun
	etag string
	// noETag: the last listing came without an ETag.
	noETag   bool
	listedAt time.Time
	err      error
	follows  map[int64]time.Time
}

// read is the run's current state: from the shared listing of its
// workflow when that serves (see above), else from the run itself.
func (c *Checker) read(ctx context.Context, client *ghclient.Client, runID int64) (*github.WorkflowRun, error) {
	now := c.clock().Now()
	prev, conditional, ok := c.cachedRun(client, runID)
	if c.PerRun {
		return c.get(ctx, client, runID)
	}
	if !ok {
		run, err := c.get(ctx, client, runID)
		if err == nil {
			if wl := c.listing(client, run); wl != nil {
				wl.follow(runID, now)
			}
		}
		return run, err
	}
	wl := c.listing(client, prev)
	if wl == nil || wl.follow(runID, now) < 2 || conditional && wl.unconditional() {
		return c.get(ctx, client, runID)
	}
	runs, err := wl.refresh(ctx, client, now, c.listingAge())
	if err != nil {
		if code := ghclient.StatusCode(err); code < 400 || code >= 500 || ghclient.RateLimited(err) {
			return nil, ghclient.Classify(err, fmt.Sprintf("listing the runs of workflow %s in %s (to read run %d)", wl.workflow, client.Repo.FullName(), runID), ghclient.Hints{
				Forbidden: "the credentials need the actions:read permission",
			})
		}
		return c.get(ctx, client, runID)
	}
	listed, ok := runs[runID]
	if !ok || listed.GetStatus() == "completed" {
		return c.get(ctx, client, runID)
	}
	return listed, nil
}

func (c *Checker) listingAge() time.Duration {
	if c.ListingAge > 0 {
		return c.ListingAge
	}
	return DefaultListingAge
}

func (c *Checker) cachedRun(client *ghclient.Client, runID int64) (run *github.WorkflowRun, conditional, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, ok := c.cache[runKey(client, runID)]
	return prev.run, prev.etag != "", ok && prev.run != nil
}

// listing is the shared listing of run's workflow, or nil when the run
// names none.
func (c *Checker) listing(client *ghclient.Client, run *github.WorkflowRun) *workflowListing {
	wf := path.Base(strings.SplitN(run.GetPath(), "@", 2)[0])
	if wf == "." || wf == "/" || wf == "" {
		if run.GetWorkflowID() == 0 {
			return nil
		}
		wf = fmt.Sprint(run.GetWorkflowID())
	}
	key := client.Repo.APIBaseURL + "|" + strings.ToLower(client.Repo.FullName()) + "|" + wf
	c.shared.mu.Lock()
	defer c.shared.mu.Unlock()
	if c.shared.m == nil || len(c.shared.m) >= maxListings {
		c.shared.m = map[string]*workflowListing{}
	}
	wl, ok := c.shared.m[key]
	if !ok {
		wl = &workflowListing{workflow: wf, follows: map[int64]time.Time{}}
		c.shared.m[key] = wl
	}
	return wl
}

// unfollow stops counting runID among the listing's runs (it finished).
func (c *Checker) unfollow(client *ghclient.Client, run *github.WorkflowRun) {
	if run == nil {
		return
	}
	if wl := c.listing(client, run); wl != nil {
		wl.mu.Lock()
		delete(wl.follows, run.GetID())
		wl.mu.Unlock()
	}
}

// follow records that runID is checked now and returns how many runs the
// listing serves.
func (wl *workflowListing) follow(runID int64, now time.Time) int {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	wl.follows[runID] = now
	for id, at := range wl.follows {
		if now.Sub(at) > followAge {
			delete(wl.follows, id)
		}
	}
	return len(wl.follows)
}

// refresh returns the listing's runs, listing again (conditionally) when the
// last listing is older than age. Callers wait for one another, so that one
// listing answers all of them.
func (wl *workflowListing) refresh(ctx context.Context, client *ghclient.Client, now time.Time, age time.Duration) (map[int64]*github.WorkflowRun, error) {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	if !wl.listedAt.IsZero() && now.Sub(wl.listedAt) < age {
		return wl.runs, wl.err
	}
	runs, etag, err := wl.list(ctx, client)
	switch {
	case ghclient.StatusCode(err) == http.StatusNotModified && wl.runs != nil:
		wl.listedAt, wl.err = now, nil
	case err != nil:
		wl.runs, wl.etag = nil, ""
		if ctx.Err() == nil {
			wl.listedAt, wl.err = now, err // a caller's own cancellation is not shared
		}
		return nil, err
	default:
		wl.runs, wl.etag, wl.noETag, wl.listedAt, wl.err = runs, etag, etag == "", now, nil
	}
	return wl.runs, nil
}

// unconditional reports a listing whose host sent no ETag with it.
func (wl *workflowListing) unconditional() bool {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	return wl.noETag
}

// list reads the first page of the workflow's runs, conditionally.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow
func (wl *workflowListing) list(ctx context.Context, client *ghclient.Client) (map[int64]*github.WorkflowRun, string, error) {
	u := fmt.Sprintf("repos/%s/%s/actions/workflows/%s/runs?per_page=100&exclude_pull_requests=true",
		url.PathEscape(client.Repo.Owner), url.PathEscape(client.Repo.Name), url.PathEscape(wl.workflow))
	req, err := client.NewRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	if wl.etag != "" && wl.runs != nil {
		req.Header.Set("If-None-Match", wl.etag)
	}
	var body github.WorkflowRuns
	resp, err := client.Do(req, &body)
	if err != nil {
		return nil, "", err
	}
	runs := make(map[int64]*github.WorkflowRun, len(body.WorkflowRuns))
	for _, r := range body.WorkflowRuns {
		// A server that ignores the path must not hand over another
		// repository's run: only runs that check out are kept.
		if r.GetID() > 0 && checkRun(client, r, r.GetID()) == nil {
			runs[r.GetID()] = slim(r)
		}
	}
	return runs, resp.Header.Get("ETag"), nil
}

// slim keeps what a check reads of a listed run, so that a listing of 100
// runs kept per workflow stays small.
func slim(r *github.WorkflowRun) *github.WorkflowRun {
	return &github.WorkflowRun{ID: r.ID, Status: r.Status, Conclusion: r.Conclusion, HTMLURL: r.HTMLURL,
		RunAttempt: r.RunAttempt, WorkflowID: r.WorkflowID, Path: r.Path}
}

func runKey(client *ghclient.Client, runID int64) string {
	return fmt.Sprintf("%s|%s|%d", client.Repo.APIBaseURL, client.Repo.FullName(), runID)
}
