package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/runlist"
)

// A search for the run a dispatch created reads the workflow's shared
// listing (internal/runlist: the first page of its 100 most recent runs,
// which waits on the workflow's runs read too) when that page reaches back
// before the search's floor: then every run of the window is on it, and
// the search sees what its own listing, filtered by event, branch and
// created, would have shown (valid and the floor filter the page here).
// Otherwise (more than a page of runs since the floor, a page out of
// order) the search lists on its own, with its filters, as before: a
// listing is complete for a search only if it reaches back before its
// window, and the 100 most recent runs may not. A refused listing is the
// search's error: its own listing, of the same endpoint with the same
// credentials, would be refused too, at the cost of a second request.
//
// The shared listing answers a search only when it is at most minListGap
// old, as the search's own would: searches want fresh answers soon after
// a dispatch; a wait takes an older one (wait.DefaultListingAge).

// fromShared serves a search from the shared listing. ok is false when the
// listing does not serve it (the search lists on its own); err is a
// listing error the search's own listing would have had too (a refusal, a
// rate limit, an outage), which is not worth a second request now.
func (w *workflowRuns) fromShared(ctx context.Context, c *ghclient.Client, host *hostState, floor, now time.Time) (l Listing, ok bool, err error) {
	sh := runlist.For(c, w.workflow)
	if last, have := sh.Last(); have && !last.Reaches(floor) {
		return Listing{}, false, nil // newer runs only push its reach later
	}
	snap, err := sh.Get(ctx, c, now, minListGap)
	if err != nil {
		return Listing{}, true, ghclient.Classify(err, fmt.Sprintf("listing runs of workflow %s in %s", w.workflow, c.Repo.FullName()), ghclient.Hints{
			Forbidden: "the credentials need the actions:read permission",
			NotFound:  notFoundHint(c, w.workflow),
		})
	}
	host.observeDate(snap.ServerNow, snap.ReceivedAt)
	if !snap.Reaches(floor) {
		return Listing{}, false, nil
	}
	l.ServerNow = snap.ServerNow
	for _, r := range snap.Runs {
		if run := r.WorkflowRun(); !r.Created.Before(floor) && w.valid(c, run) {
			l.Runs = append(l.Runs, listed(run))
		}
	}
	w.mu.Lock()
	w.sharedRuns = l.Runs
	w.mu.Unlock()
	return l, true, nil
}

// observeDate learns the server's clock from a Date received at local.
func (h *hostState) observeDate(date, local time.Time) {
	if date.IsZero() || local.IsZero() {
		return
	}
	h.mu.Lock()
	h.skew, h.known = date.Sub(local), true
	h.mu.Unlock()
}
