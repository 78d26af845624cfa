package main

import "testing"

// checkScale checks scenario 7 (run by TestShortRun), its mixed case
// included: no dispatch takes another's run, no promotion fails, every one
// ends, and a shared listing costs fewer requests than per-run polling in
// every mode.
func checkScale(t *testing.T, rs []scaleResult) {
	t.Helper()
	if len(rs) != 8 {
		t.Fatalf("scenario 7: %d results, want 3 modes × 2 ways of polling and 2 mixed", len(rs))
	}
	for i, r := range rs {
		if r.Misattributed > 0 || r.Errors > 0 || r.Succeeded != r.Waits+r.Dispatches {
			t.Errorf("%s, %s: %d misattributed, %d errors, %d of %d succeeded", r.Mode, r.Polling, r.Misattributed, r.Errors, r.Succeeded, r.Waits+r.Dispatches)
		}
		if i%2 == 1 && i < 6 && r.RequestsPerMin >= rs[i-1].RequestsPerMin {
			t.Errorf("%s: shared listing %.0f requests/min, per-run %.0f", r.Mode, r.RequestsPerMin, rs[i-1].RequestsPerMin)
		}
	}
}
