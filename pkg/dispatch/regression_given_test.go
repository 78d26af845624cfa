package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// A key the caller chose, GitHub names the run, timeout shorter than the
// settle: the dispatch fails saying no run carries the key and that the
// run-name must be wrong, without naming the run GitHub named.
func TestRegressionGivenKeyShortTimeoutMisreports(t *testing.T) {
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerRunDetails, RunDelay: 200 * time.Millisecond})
	f.keyedWorkflow()
	d, c := f.dispatcher(), f.ghesClient(t)
	r := keyedReq("mine")
	r.Timeout = 5 * time.Second
	s := d.Record(r, "deploy-v1.2.3", true)
	var err error
	for i := 0; i < 1000 && !s.Done(); i++ {
		var step Step
		step, err = d.Advance(context.Background(), c, r, s)
		if err != nil {
			break
		}
		f.clock.Advance(max(step.Wait, 10*time.Millisecond))
	}
	t.Logf("named run %d; phase %s; err: %v", s.Named, s.Phase, err)
	if err != nil && s.Named > 0 {
		t.Errorf("GitHub named run %d, the only run carrying the key, and the dispatch failed: %v", s.Named, err)
	}
}
