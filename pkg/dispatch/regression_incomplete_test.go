package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// A keyed dispatch's one-hour look-up leaves an incomplete (10-page)
// listing in the shared cache; a dispatch without a key of the same
// workflow and ref, whose own window holds a handful of runs, reads it
// within minListGap and fails for good with "more runs appeared since the
// dispatch than one listing holds".
func TestRegressionSharedIncompleteListingFailsAnotherDispatch(t *testing.T) {
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: time.Second, QueuedFor: time.Hour, RunFor: time.Hour})
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"environment", "nonce", "dispatch_key"}, TriggerRefs: []string{"main"}, RunName: "Deploy ${{ inputs.dispatch_key }}"})
	for i := 0; i < 1001; i++ {
		f.sim.CreateRun(f.repo, "deploy.yml", "main", "someone-else", map[string]any{"nonce": "old"}, 0)
	}
	f.clock.Advance(30 * time.Minute)
	d, c := f.dispatcher(), f.ghesClient(t)
	rx := req("x")
	x := d.Record(rx, "", false)
	for x.Phase != PhaseSent {
		if _, err := d.Advance(context.Background(), c, rx, x); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Advance(context.Background(), c, rx, x); err != nil { // GET /user
		t.Fatal(err)
	}
	f.clock.Advance(500 * time.Millisecond)
	rk := req("k")
	rk.Inputs = map[string]string{"environment": "prod", "nonce": "k"}
	rk.CorrelationInput = "dispatch_key"
	k := d.Record(rk, "", false)
	_, errK := d.Advance(context.Background(), c, rk, k)
	t.Logf("keyed dispatch's look-up: %v", errK)
	_, errX := d.Advance(context.Background(), c, rx, x)
	if errX != nil {
		t.Fatalf("the keyless dispatch (a few runs in its window) failed for good: %v", errX)
	}
}
