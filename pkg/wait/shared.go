package wait

import (
	"context"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/runlist"
)

// Shared listings: a process waiting on many runs of one workflow reads
// them all from one conditional listing of the workflow's most recent runs
// (status, conclusion and attempt of up to 100 in one answer, a 304 while
// none changed) instead of one request per run, so that what waiting costs
// grows with the workflows, not the runs. The listing is
// internal/runlist's, one per client (API host, identity, repository) and
// workflow: searches for the run a dispatch created read the same one
// (pkg/dispatch/shared.go), each with its own freshness.
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

// workflowListing is the runs this process follows through one workflow's
// shared listing (internal/runlist: dispatch searches read it too).
type workflowListing struct {
	workflow string // file name, or ID when the run named no path
	shared   *runlist.Listing

	mu      sync.Mutex
	follows map[int64]time.Time
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
	snap, err := wl.shared.Get(ctx, client, now, c.listingAge())
	if err != nil {
		if code := ghclient.StatusCode(err); code < 400 || code >= 500 || ghclient.RateLimited(err) {
			return nil, ghclient.Classify(err, fmt.Sprintf("listing the runs of workflow %s in %s (to read run %d)", wl.workflow, client.Repo.FullName(), runID), ghclient.Hints{
				Forbidden: "the credentials need the actions:read permission",
			})
		}
		return c.get(ctx, client, runID)
	}
	listed, ok := snap.Run(runID)
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
	// One client is one API host, identity and repository: a listing one
	// token read is never another's answer.
	key := fmt.Sprintf("%p|%s", client, wf)
	c.shared.mu.Lock()
	defer c.shared.mu.Unlock()
	if c.shared.m == nil || len(c.shared.m) >= maxListings {
		c.shared.m = map[string]*workflowListing{}
	}
	wl, ok := c.shared.m[key]
	if !ok {
		wl = &workflowListing{workflow: wf, shared: runlist.For(client, wf), follows: map[int64]time.Time{}}
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

// unconditional reports a listing whose host sent no ETag with it.
func (wl *workflowListing) unconditional() bool {
	last, ok := wl.shared.Last()
	return ok && last.NoETag
}

func runKey(client *ghclient.Client, runID int64) string {
	return fmt.Sprintf("%s|%s|%d", client.Repo.APIBaseURL, client.Repo.FullName(), runID)
}
