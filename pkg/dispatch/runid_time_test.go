package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// timeToRunID dispatches with key (given: the caller chose it) on a server
// that lists the run runDelay after accepting the dispatch, and returns how
// long after the run was listable its ID was known (fake clock).
func timeToRunID(t *testing.T, key string, given bool, runDelay time.Duration) (time.Duration, *State) {
	t.Helper()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: runDelay})
	f.keyedWorkflow()
	c := f.ghesClient(t)
	d, r := f.dispatcher(), keyedReq("x")
	s := d.Record(r, key, given)
	var listable time.Time
	for i := 0; i < 10000 && !s.Done(); i++ {
		step, err := d.Advance(context.Background(), c, r, s)
		if err != nil {
			t.Fatal(err)
		}
		if listable.IsZero() && s.Phase == PhaseSent {
			listable = f.clock.Now().Add(runDelay)
		}
		if !s.Done() {
			f.clock.Advance(max(step.Wait, 10*time.Millisecond))
		}
	}
	if s.Run == nil || s.Run.Method != ByCorrelationKey {
		t.Fatalf("no run by key: %+v", s)
	}
	return f.clock.Now().Sub(listable), s
}

// A key this process made at random cannot be anyone else's: its run is
// taken at the first listing that shows its title, with no settle.
func TestRandomKeyTakesTheRunAsSoonAsItIsListed(t *testing.T) {
	t.Parallel()
	for _, delay := range []time.Duration{0, 2 * time.Second, 7 * time.Second} {
		took, s := timeToRunID(t, "", false, delay)
		if s.KeyGiven {
			t.Fatal("a random key is not a chosen one")
		}
		if took > FindInterval(0)+minListGap {
			t.Errorf("run listed %s after the dispatch: its ID known %s after it was listable, want at most %s", delay, took, FindInterval(0)+minListGap)
		}
	}
}

// A key the caller chose may be used by another dispatch at the same time:
// its run is taken only once a second run carrying it would have shown
// (the settle after GitHub had the dispatch, and the read lag).
func TestChosenKeyWaitsOutTheSettle(t *testing.T) {
	t.Parallel()
	took, s := timeToRunID(t, "deploy-v2.0.0", true, 2*time.Second)
	if !s.KeyGiven {
		t.Fatal("a chosen key must be marked so")
	}
	if min := DefaultSettle + readLag - 2*time.Second; took < min {
		t.Errorf("chosen key: ID known %s after the run was listable, want at least %s (the settle)", took, min)
	}
}
