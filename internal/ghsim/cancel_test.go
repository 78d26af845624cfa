package ghsim_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// A run carries the commit its ref pointed at when it was dispatched, and
// a branch moved later does not change it; cancelling a running run is
// 202 with an empty object (the run then completes as cancelled),
// cancelling a completed one 409: both as GitHub's OpenAPI description
// says.
func TestRunCommitAndCancelFollowGitHub(t *testing.T) {
	api := loadOpenAPI(t)
	const cancelPath = "/repos/{owner}/{repo}/actions/runs/{run_id}/cancel"
	accepted := api.schema(t, "paths", cancelPath, "post", "responses", "202", "content", "application/json", "schema")
	conflict := api.schema(t, "components", "schemas", "basic-error")
	var mu sync.Mutex
	var seen []ghsim.Exchange
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	sim, pool := simtest.Start(t, ghsim.Options{Clock: fake, QueuedFor: time.Minute, RunFor: time.Hour, Observe: func(e ghsim.Exchange) {
		mu.Lock()
		seen = append(seen, e)
		mu.Unlock()
	}})
	repo := sim.AddRepo("myorg", "my-app")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml"})
	sim.AddToken("ghp_cancel", "octocat", false)
	freight, moved := strings.Repeat("9f", 20), strings.Repeat("b4", 20)
	sim.SetRefCommit(repo, "main", freight)
	id := sim.CreateRun(repo, "deploy.yml", "main", "octocat", nil, 0)
	sim.SetRefCommit(repo, "main", moved)
	later := sim.CreateRun(repo, "deploy.yml", "main", "octocat", nil, 0)
	r, _ := repourl.Parse("https://github.com/myorg/my-app", repourl.Options{})
	c, err := pool.Client(r, credentials.Credentials{Token: "ghp_cancel", Source: "test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	checker := &wait.Checker{}
	for run, sha := range map[int64]string{id: freight, later: moved} {
		st, err := checker.Check(ctx, c, run, "")
		if err != nil || st.HeadSHA != sha || st.HeadBranch != "main" {
			t.Fatalf("run %d: %+v, %v; want head %s on main", run, st, err, sha)
		}
	}
	if got, err := wait.Cancel(ctx, c, id); got != wait.CancelAccepted || err != nil {
		t.Fatalf("cancelling a queued run: %v, %v", got, err)
	}
	checker.Forget(c, id)
	if st, err := checker.Check(ctx, c, id, ""); err != nil || st.Status != "completed" || st.Conclusion != "cancelled" {
		t.Fatalf("after the cancel: %+v, %v", st, err)
	}
	if got, err := wait.Cancel(ctx, c, id); got != wait.CancelCompleted || err != nil {
		t.Fatalf("cancelling a completed run: %v, %v", got, err)
	}
	if n := sim.Cancels(repo, id); n != 1 {
		t.Fatalf("%d cancels applied, want 1", n)
	}
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == sim.Stats().Requests })
	mu.Lock()
	defer mu.Unlock()
	statuses := map[int]int{}
	for _, e := range seen {
		if e.Route != "cancel" {
			continue
		}
		statuses[e.Status]++
		switch e.Status {
		case 202:
			api.validate(t, "cancel 202", accepted, e.Body)
		case 409:
			api.validate(t, "cancel 409", conflict, e.Body)
		default:
			t.Errorf("cancel answered %d, which the description does not list", e.Status)
		}
	}
	if statuses[202] != 1 || statuses[409] != 1 {
		t.Fatalf("cancel answers %v, want one 202 and one 409", statuses)
	}
}
