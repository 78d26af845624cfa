package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// A listing whose page 1 succeeded and page 2 failed leaves page 1's ETag
// behind with the older runs; the next conditional ask is a 304, so the
// old runs are judged against a fresh Date: a second run in the window is
// never seen, and the other dispatcher's run is taken.
func TestRegressionETagOfAFailedListingHidesARun(t *testing.T) {
	var fx *fixture
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 3 * time.Second, QueuedFor: time.Hour, RunFor: time.Hour, Observe: func(e ghsim.Exchange) {
		if fx != nil && e.Route == "list-runs" {
			t.Logf("%s %v page=%v status=%d inm=%q", fx.clock.Now().Format("15:04:05.000"), e.Route, e.Query["page"], e.Status, e.Header.Get("If-None-Match"))
		}
	}})
	fx = f
	d, c, r := f.dispatcher(), f.ghesClient(t), req("mine")
	// A busy repository: 110 runs by another user in the half minute before,
	// so that the window's listing has two pages.
	for i := 0; i < 110; i++ {
		f.sim.CreateRun(f.repo, "deploy.yml", "main", "someone-else", map[string]any{"nonce": "old"}, 0)
	}
	f.clock.Advance(30 * time.Second)
	s := d.Record(r, "", false)
	start := f.clock.Now()
	var foreign int64
	injected := false
	for i := 0; i < 1000 && !s.Done(); i++ {
		if s.Phase == PhaseSent && foreign == 0 {
			// Another dispatcher with the same credentials, 0.5 s later: inside
			// the window; the promise is that this makes the dispatch refuse.
			foreign = f.sim.CreateRun(f.repo, "deploy.yml", "main", "octocat", map[string]any{"nonce": "theirs"}, 500*time.Millisecond)
		}
		if !injected && f.clock.Now().Sub(start) >= 3000*time.Millisecond {
			injected = true
			// One listing: page 1 through, page 2 rate-limited.
			f.sim.InjectFault(&ghsim.Fault{Route: "list-runs", SecondaryRateLimit: time.Second, Skip: 1, Times: 1})
		}
		step, err := d.Advance(context.Background(), c, r, s)
		if err != nil {
			t.Logf("ended with error: %v", err)
			break
		}
		f.clock.Advance(max(step.Wait, 10*time.Millisecond))
	}
	if s.Run != nil {
		t.Logf("took run %d (%s) by %s; foreign run is %d", s.Run.ID, f.runInputs(t, s.Run.ID)["nonce"], s.Run.Method, foreign)
		if f.runInputs(t, s.Run.ID)["nonce"] != "mine" {
			t.Fatalf("WRONG RUN: took another dispatcher's run %d while two runs were in the window", s.Run.ID)
		}
	}
	t.Logf("stats %+v", f.sim.Stats())
}
