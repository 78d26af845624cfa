package runlist

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// Reaches is what lets a search read "no other run in my window" from the
// shared page: only a page holding every run, or one whose oldest run is
// older than the window, in GitHub's order.
func TestReaches(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	runs := func(ages ...time.Duration) []Run {
		var out []Run
		for i, a := range ages {
			out = append(out, Run{ID: int64(i + 1), Created: t0.Add(-a)})
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

// What a listed run keeps is bounded and believable: a title cut to
// maxTitle, a web URL outside the repository replaced by the run's own, a
// null conclusion still null, the triggering actor only when named.
func TestSlimKeepsWhatReadersUseAndBoundsIt(t *testing.T) {
	repo, err := repourl.Parse("https://github.com/myorg/my-app", repourl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &ghclient.Client{Repo: repo}
	long := strings.Repeat("x", 3*maxTitle)
	in := &github.WorkflowRun{ID: github.Ptr(int64(7)), Status: github.Ptr("in_progress"), DisplayTitle: &long,
		HTMLURL: github.Ptr("https://evil.example/actions/runs/7"), Actor: &github.User{Login: github.Ptr("octocat")},
		CreatedAt: &github.Timestamp{Time: time.Unix(1_800_000_000, 0)}}
	out := slim(c, in).WorkflowRun()
	switch {
	case len(out.GetDisplayTitle()) != maxTitle:
		t.Errorf("title kept at %d bytes, want %d", len(out.GetDisplayTitle()), maxTitle)
	case out.GetHTMLURL() != "https://github.com/myorg/my-app/actions/runs/7":
		t.Errorf("web URL %q", out.GetHTMLURL())
	case out.Conclusion != nil || out.TriggeringActor != nil:
		t.Errorf("a null conclusion or an absent triggering actor came back: %v, %v", out.Conclusion, out.TriggeringActor)
	case out.GetStatus() != "in_progress" || out.GetActor().GetLogin() != "octocat" || !out.GetCreatedAt().Time.Equal(in.GetCreatedAt().Time):
		t.Errorf("run %+v", out)
	}
}
