package ghsim_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/internal/workflowfile"
)

// What a dry run reads (the file's contents, a workflow by ID, the
// repository with the caller's permissions) and the 400 refusing a version
// follow GitHub's description.
func TestDryRunAnswersFollowTheDescription(t *testing.T) {
	api := loadOpenAPI(t)
	schemas := map[string]string{
		"contents":     "/repos/{owner}/{repo}/contents/{path}",
		"get-workflow": "/repos/{owner}/{repo}/actions/workflows/{workflow_id}",
		"get-repo":     "/repos/{owner}/{repo}",
	}
	var mu sync.Mutex
	var seen []ghsim.Exchange
	sim, pool := simtest.Start(t, ghsim.Options{APIVersions: []string{ghsim.APIVersion2026}, Observe: func(e ghsim.Exchange) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e)
	}})
	repo := sim.AddRepo("o", "r")
	wf := sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"environment"}, RunName: "Deploy ${{ inputs.environment }}"})
	sim.AddToken("ghp_contents", "octocat", false)
	u, err := repourl.Parse(sim.RepoURL("o", "r"), repourl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pool.Client(u, credentials.Credentials{Token: "ghp_contents", Source: "test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	// Reads start under 2022-11-28, which this host refuses: a 400 each
	// way of reading, once.
	rep := workflowfile.DryRun(context.Background(), c, &workflowfile.Cache{}, fmt.Sprint(wf.ID), "main",
		workflowfile.Dispatch{Inputs: map[string]workflowfile.Value{"environment": {Text: "prod"}}})
	if !rep.OK() {
		t.Fatalf("report %+v", rep)
	}
	mu.Lock()
	defer mu.Unlock()
	checked := map[string]int{}
	for _, e := range seen {
		what := fmt.Sprintf("%s %s %d", e.Method, e.Path, e.Status)
		switch {
		case e.Status == http.StatusBadRequest:
			api.validate(t, what, api.schema(t, "components", "schemas", "basic-error"), e.Body)
			checked["version-400"]++
		case e.Status == http.StatusOK && schemas[e.Route] != "":
			api.validate(t, what, api.schema(t, "paths", schemas[e.Route], "get", "responses", "200", "content", "application/json", "schema"), e.Body)
			checked[e.Route]++
		default:
			t.Errorf("%s: not checked", what)
		}
	}
	if checked["version-400"] != 1 || checked["contents"] != 1 || checked["get-workflow"] != 1 || checked["get-repo"] != 1 {
		t.Fatalf("checked %v, want one 400 and one answer of each read", checked)
	}
}
