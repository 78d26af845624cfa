package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// One chosen key, two processes at once; the first one's POST is answered
// 502 before GitHub acted (a lost answer). Both then print the second's run.
func TestRegressionOneKeyTwiceAtOnceLostAnswerBothTakeOneRun(t *testing.T) {
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: time.Second})
	f.keyedWorkflow()
	c := f.ghesClient(t)
	da, db := f.dispatcher(), f.dispatcher()
	ra, rb := keyedReq("a"), keyedReq("b")
	sa, sb := da.Record(ra, "deploy-v1.2", true), db.Record(rb, "deploy-v1.2", true)
	// Both look the key up (nothing yet).
	for _, x := range []struct {
		d *Dispatcher
		r Request
		s *State
	}{{da, ra, sa}, {db, rb, sb}} {
		if _, err := x.d.Advance(context.Background(), c, x.r, x.s); err != nil || x.s.KeyCheckedAt.IsZero() {
			t.Fatal(err)
		}
	}
	f.sim.InjectFault(&ghsim.Fault{Route: "dispatch", Status: 502, Times: 1}) // A's POST: 502, nothing dispatched
	if _, err := da.Advance(context.Background(), c, ra, sa); err != nil || sa.Uncertainty != LostAnswer {
		t.Fatalf("%v %s", err, sa.Uncertainty)
	}
	if _, err := db.Advance(context.Background(), c, rb, sb); err != nil || sb.Phase != PhaseSent {
		t.Fatal(err)
	}
	errA := f.advance(t, da, c, ra, sa, nil)
	errB := f.advance(t, db, c, rb, sb, nil)
	t.Logf("A: %+v %v", sa.Run, errA)
	t.Logf("B: %+v %v", sb.Run, errB)
	if errA == nil && errB == nil && sa.Run.ID == sb.Run.ID {
		t.Fatalf("both invocations printed run %d (dispatch %v's); %d dispatches", sa.Run.ID, f.runInputs(t, sa.Run.ID)["nonce"], f.sim.Stats().Dispatches)
	}
}
