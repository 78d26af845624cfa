package wait

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/internal/runlist"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
)

// mixed is one process (one Pool, one Dispatcher, one Checker, one clock)
// waiting on runs of a workflow while searching for the run a dispatch of
// it created, against a simulator answering dispatches with 204.
type mixed struct {
	sim     *ghsim.Server
	repo    *ghsim.Repo
	client  *ghclient.Client
	clock   *clock.Fake
	checker *Checker
	d       *dispatch.Dispatcher
}

func newMixed(t *testing.T) *mixed {
	t.Helper()
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	sim, pool := simtest.Start(t, ghsim.Options{Answer: ghsim.AnswerNoContent, QueuedFor: 5 * time.Minute, RunFor: time.Minute, RunDelay: 2 * time.Second, Clock: fake})
	repo := sim.AddRepo("myorg", "my-app")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"nonce"}})
	sim.AddToken("ghp_mixed", "octocat", false)
	r, _ := repourl.Parse("https://github.com/myorg/my-app", repourl.Options{})
	client, err := pool.Client(r, credentials.Credentials{Token: "ghp_mixed", Source: "test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return &mixed{sim: sim, repo: repo, client: client, clock: fake, checker: &Checker{Clock: fake}, d: &dispatch.Dispatcher{Clock: fake}}
}

// checkAll checks every run once, as a controller's reconciles would.
func (m *mixed) checkAll(t *testing.T, ids []int64) {
	t.Helper()
	for _, id := range ids {
		if st, err := m.checker.Check(context.Background(), m.client, id, ""); err != nil || st.Outcome != Running {
			t.Fatalf("run %d: %+v, %v", id, st, err)
		}
	}
}

// sent dispatches deploy.yml without a key (its run is found by listing)
// and returns its request and state once GitHub accepted it.
func (m *mixed) sent(t *testing.T) (dispatch.Request, *dispatch.State) {
	t.Helper()
	req := dispatch.Request{WorkflowFile: "deploy.yml", Ref: "main", Inputs: map[string]string{"nonce": "ours"}, Timeout: time.Minute}
	s := m.d.Record(req, "", false)
	if _, err := m.d.Advance(context.Background(), m.client, req, s); err != nil || s.Phase != dispatch.PhaseSent {
		t.Fatalf("dispatch: %v, phase %s", err, s.Phase)
	}
	return req, s
}

// ours is the run the dispatch created, as the simulator knows it.
func (m *mixed) ours(t *testing.T) int64 {
	t.Helper()
	for _, r := range m.sim.Runs(m.repo) {
		if r.Inputs["nonce"] == "ours" {
			return r.ID
		}
	}
	t.Fatal("the dispatch created no run")
	return 0
}

// A search for a dispatch's run and waits on runs of the same workflow
// read one listing per interval: every 5 s (the waits' listing age) the
// waits and the search together send one listing, where they sent two
// (the waits' and the search's, filtered) before; and the search takes its
// own run, not one of the waits'.
func TestSearchAndWaitsOnOneWorkflowShareOneListing(t *testing.T) {
	m := newMixed(t)
	var waits []int64
	for range 3 {
		waits = append(waits, m.sim.CreateRun(m.repo, "deploy.yml", "main", "octocat", nil, 0))
	}
	m.checkAll(t, waits)             // first reads: one per run, naming the workflow
	m.clock.Advance(2 * time.Minute) // runs created with the dispatch would be refused, not guessed
	req, s := m.sent(t)
	m.sim.ResetStats()
	intervals := 0
	for !s.Done() && intervals < 10 {
		m.clock.Advance(5 * time.Second)
		intervals++
		before := m.sim.Stats().ByRoute["list-runs"]
		m.checkAll(t, waits)
		if _, err := m.d.Advance(context.Background(), m.client, req, s); err != nil {
			t.Fatalf("search, interval %d: %v", intervals, err)
		}
		if got := m.sim.Stats().ByRoute["list-runs"] - before; got != 1 {
			t.Fatalf("interval %d: %d listings for 3 waits and a search on one workflow, want 1", intervals, got)
		}
	}
	if s.Run == nil || s.Run.ID != m.ours(t) {
		t.Fatalf("after %d intervals: run %+v, want %d (%s)", intervals, s.Run, m.ours(t), s.Failure)
	}
	if st := m.sim.Stats(); st.ByRoute["get-run"] != 0 {
		t.Errorf("%d per-run reads while the listing served: %+v", st.ByRoute["get-run"], st)
	}
}

// A search whose window the shared listing does not reach (more than a
// page of the workflow's runs, on another branch, created since the
// dispatch's run, which is not on the page) lists on its own with its
// filters and still finds its run; the waits keep the shared listing.
func TestSearchBeyondTheSharedPageFallsBackToItsOwnListing(t *testing.T) {
	m := newMixed(t)
	waits := []int64{m.sim.CreateRun(m.repo, "deploy.yml", "main", "octocat", nil, 0), m.sim.CreateRun(m.repo, "deploy.yml", "main", "octocat", nil, 0)}
	m.checkAll(t, waits)
	m.clock.Advance(2 * time.Minute)
	req, s := m.sent(t)
	m.clock.Advance(3 * time.Second) // the dispatch's run exists: the newer runs push it off the page
	for range runlist.PerPage + 20 {
		m.sim.CreateRun(m.repo, "deploy.yml", "feature", "octocat", nil, 0)
	}
	shared := runlist.For(m.client, "deploy.yml")
	m.sim.ResetStats()
	sharedBefore := shared.Requests()
	for i := 0; !s.Done() && i < 40; i++ {
		m.clock.Advance(time.Second)
		m.checkAll(t, waits)
		if _, err := m.d.Advance(context.Background(), m.client, req, s); err != nil {
			t.Fatalf("search: %v", err)
		}
	}
	if s.Run == nil || s.Run.ID != m.ours(t) {
		t.Fatalf("run %+v, want %d (%s)", s.Run, m.ours(t), s.Failure)
	}
	last, _ := shared.Last()
	if last.Reaches(s.NotBefore) {
		t.Fatal("the shared page reaches the window: the test does not test the fallback")
	}
	lists, sharedLists := m.sim.Stats().ByRoute["list-runs"], shared.Requests()-sharedBefore
	if own := lists - sharedLists; own == 0 || sharedLists == 0 {
		t.Errorf("%d listings: %d shared, %d the search's own; want both", lists, sharedLists, own)
	}
}

// Waits and a search on one workflow called at once (reconcile workers)
// still send one listing per interval between them, and the search takes
// its own run (run with -race).
func TestConcurrentSearchAndWaitsShareOneListing(t *testing.T) {
	m := newMixed(t)
	var waits []int64
	for range 8 {
		waits = append(waits, m.sim.CreateRun(m.repo, "deploy.yml", "main", "octocat", nil, 0))
	}
	m.checkAll(t, waits)
	m.clock.Advance(2 * time.Minute)
	req, s := m.sent(t)
	for i := 0; !s.Done() && i < 10; i++ {
		m.clock.Advance(5 * time.Second)
		before := m.sim.Stats().ByRoute["list-runs"]
		errs := make(chan error, len(waits)+1)
		var wg sync.WaitGroup
		for _, id := range waits {
			wg.Go(func() {
				_, err := m.checker.Check(context.Background(), m.client, id, "")
				errs <- err
			})
		}
		wg.Go(func() {
			_, err := m.d.Advance(context.Background(), m.client, req, s)
			errs <- err
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := m.sim.Stats().ByRoute["list-runs"] - before; got != 1 {
			t.Fatalf("interval %d: %d listings, want 1", i+1, got)
		}
	}
	if s.Run == nil || s.Run.ID != m.ours(t) {
		t.Fatalf("run %+v, want %d (%s)", s.Run, m.ours(t), s.Failure)
	}
}

// A search whose listing is refused (403: no actions:read) fails at once,
// saying what the credentials need and what may exist, after one listing:
// the search's own listing would be refused the same way.
func TestRefusedSharedListingFailsTheSearchAfterOneRequest(t *testing.T) {
	m := newMixed(t)
	req, s := m.sent(t)
	m.sim.InjectFault(&ghsim.Fault{Route: "list-runs", Status: http.StatusForbidden})
	m.sim.ResetStats()
	var err error
	for i := 0; i < 3 && !s.Done(); i++ { // the first asks whose token this is
		m.clock.Advance(time.Second)
		_, err = m.d.Advance(context.Background(), m.client, req, s)
	}
	if err == nil || !s.Done() || !strings.Contains(err.Error(), "actions:read") || !strings.Contains(err.Error(), "a run may still start") {
		t.Fatalf("search: %v (phase %s)", err, s.Phase)
	}
	if got := m.sim.Stats().ByRoute["list-runs"]; got != 1 {
		t.Errorf("%d listings for a refused search, want 1", got)
	}
}
