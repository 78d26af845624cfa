package ghsim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// TestReviewFollowsDescription: the review a person sends by hand (the
// body ghsim prints for curl) is what GitHub's OpenAPI description asks for,
// and the simulator's answer is what it describes.
func TestReviewFollowsDescription(t *testing.T) {
	api := loadOpenAPI(t)
	const path = "/repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments"
	request := api.schema(t, "paths", path, "post", "requestBody", "content", "application/json", "schema")
	response := api.schema(t, "paths", path, "post", "responses", "200", "content", "application/json", "schema")

	fake := clock.NewFake(epoch)
	sim, err := ghsim.New(ghsim.Options{Clock: fake, QueuedFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sim.AddToken("ghp_clock", "octocat", false)
	repo := sim.AddRepo("myorg", "my-app")
	wf := sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Environment: &ghsim.Environment{Name: "production", Manual: true}})
	id := sim.CreateRun(repo, "deploy.yml", "main", "octocat", nil, 0)
	fake.Advance(time.Second)

	body := fmt.Sprintf(`{"environment_ids":[%d],"state":"approved","comment":"by hand"}`, ghsim.EnvironmentID(wf))
	api.validate(t, "the review request", request, []byte(body))
	c := newRawClient(t, sim, false)
	var answer json.RawMessage
	resp := c.do(http.MethodPost, fmt.Sprintf("/repos/myorg/my-app/actions/runs/%d/pending_deployments", id), json.RawMessage(body), &answer)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("review: %d %s", resp.StatusCode, answer)
	}
	api.validate(t, "the review answer", response, answer)
}
