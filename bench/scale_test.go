package main

import "testing"

// Scenario 7 in its short setting: no dispatch takes another's run, no
// promotion fails, every wait ends, and a shared listing costs fewer
// requests than per-run polling in every mode.
func TestScaleShort(t *testing.T) {
	rs, err := runScales(shortScale, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		t.Logf("%+v", r)
		if r.Misattributed > 0 || r.Errors > 0 || r.Succeeded != r.Waits+r.Dispatches {
			t.Errorf("%s, %s: %d misattributed, %d errors, %d of %d succeeded", r.Mode, r.Polling, r.Misattributed, r.Errors, r.Succeeded, r.Waits+r.Dispatches)
		}
		if i%2 == 1 && r.RequestsPerMin >= rs[i-1].RequestsPerMin {
			t.Errorf("%s: shared listing %.0f requests/min, per-run %.0f", r.Mode, r.RequestsPerMin, rs[i-1].RequestsPerMin)
		}
	}
}
