package runlist

import (
	"testing"
	"time"

	"github.com/google/go-github/v90/github"
)

// Reaches is what lets a search read "no other run in my window" from the
// shared page: only a page holding every run, or one whose oldest run is
// older than the window, in GitHub's order.
func TestReaches(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	runs := func(ages ...time.Duration) []*github.WorkflowRun {
		var out []*github.WorkflowRun
		for i, a := range ages {
			out = append(out, &github.WorkflowRun{ID: github.Ptr(int64(i + 1)), CreatedAt: &github.Timestamp{Time: t0.Add(-a)}})
		}
		return out
	}
	floor := t0.Add(-time.Minute)
	for _, tc := range []struct {
		name string
		snap Snapshot
		want bool
	}{
		{"whole page, nothing older", Snapshot{Whole: true, Ordered: true, Runs: runs(0, time.Second)}, true},
		{"whole and empty", Snapshot{Whole: true, Ordered: true}, true},
		{"full page, oldest before the floor", Snapshot{Ordered: true, Runs: runs(0, 30*time.Second, 2*time.Minute)}, true},
		{"full page, oldest at the floor (more may share its second)", Snapshot{Ordered: true, Runs: runs(0, time.Minute)}, false},
		{"full page, all in the window", Snapshot{Ordered: true, Runs: runs(0, 10*time.Second, 50*time.Second)}, false},
		{"full page out of order", Snapshot{Ordered: false, Runs: runs(0, 2*time.Minute)}, false},
		{"full page, no runs of ours", Snapshot{Ordered: true}, false},
	} {
		if got := tc.snap.Reaches(floor); got != tc.want {
			t.Errorf("%s: Reaches = %t, want %t", tc.name, got, tc.want)
		}
	}
}
