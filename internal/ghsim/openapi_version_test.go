package ghsim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
)

// The description's 2026-03-10 changeset for the dispatch removes the 204
// answer and return_run_details; the simulator, asked for 2026-03-10,
// answers the dispatcher 200 with a body the description allows, and
// refuses the removed field.
func TestDispatchUnder2026FollowsTheDescriptionsBreakingChange(t *testing.T) {
	api := loadOpenAPI(t)
	const dispatchPath = "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"
	op := api.doc["paths"].(map[string]any)[dispatchPath].(map[string]any)["post"].(map[string]any)
	removed := map[string]bool{}
	for _, ch := range op["x-github-breaking-changes"].([]any) {
		ch := ch.(map[string]any)
		if ch["version"] != ghsim.APIVersion2026 {
			continue
		}
		patches, _ := ch["patch"].([]any)
		for _, p := range patches {
			p := p.(map[string]any)
			if p["op"] == "remove" {
				removed[p["path"].(string)] = true
			}
		}
	}
	if !removed["/responses/204"] || !removed["/requestBody/content/application~1json/schema/properties/return_run_details"] {
		t.Fatalf("the description's 2026-03-10 changes to the dispatch are %v; the simulator's 2026-03-10 behaviour assumes the 204 and return_run_details are removed", removed)
	}
	ok200 := api.schema(t, "paths", dispatchPath, "post", "responses", "200", "content", "application/json", "schema")
	request := api.schema(t, "paths", dispatchPath, "post", "requestBody", "content", "application/json", "schema")

	var mu sync.Mutex
	var seen []ghsim.Exchange
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	sim, pool := simtest.Start(t, ghsim.Options{Clock: fake, APIVersions: []string{ghsim.APIVersion2026}, Observe: func(e ghsim.Exchange) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e)
	}})
	repo := sim.AddRepo("o", "r")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"environment"}})
	sim.AddToken("ghp_v2026", "octocat", false)
	u, err := repourl.Parse(sim.RepoURL("o", "r"), repourl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pool.Client(u, credentials.Credentials{Token: "ghp_v2026", Source: "test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	d := &dispatch.Dispatcher{Clock: fake}
	if _, err := d.Dispatch(context.Background(), c, dispatch.Request{WorkflowFile: "deploy.yml", Ref: "main", Inputs: map[string]string{"environment": "prod"}, Timeout: 10 * time.Second}, ""); err != nil {
		t.Fatal(err)
	}
	// The removed field, sent anyway, is refused and dispatches nothing.
	body := github.CreateWorkflowDispatchEventRequest{Ref: "main", ReturnRunDetails: github.Ptr(true)}
	req, err := c.NewRequest(context.Background(), "POST", "repos/o/r/actions/workflows/deploy.yml/dispatches", body, github.WithVersion(ghsim.APIVersion2026))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Do(req, nil); resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("return_run_details under 2026-03-10: %v, want a 400", err)
	}
	if n := sim.Stats().Dispatches; n != 1 {
		t.Fatalf("%d dispatches, want the dispatcher's one", n)
	}
	mu.Lock()
	defer mu.Unlock()
	checked := 0
	for _, e := range seen {
		if e.Route != "dispatch" || e.Status != http.StatusOK {
			continue
		}
		var keys map[string]any
		_ = json.Unmarshal(e.RequestBody, &keys)
		if _, ok := keys["return_run_details"]; ok {
			t.Errorf("the dispatcher sent return_run_details under 2026-03-10: %s", e.RequestBody)
		}
		api.validate(t, "dispatch request under 2026-03-10", request, e.RequestBody)
		api.validate(t, "dispatch 200 under 2026-03-10", ok200, e.Body)
		checked++
	}
	if checked != 1 {
		t.Fatalf("%d dispatches answered 200 under 2026-03-10, want 1", checked)
	}
}
