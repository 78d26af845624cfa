package ghsim_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// TestManualReview: a run of a Manual environment waits until a reviewer
// decides, however long that takes; approved, it runs and succeeds;
// rejected, it completes at once as a failure. A review of a run that is
// not waiting, or for another environment, is refused.
func TestManualReview(t *testing.T) {
	for _, tc := range []struct {
		state, conclusion string
		runFor            time.Duration
	}{
		{"approved", "success", 10 * time.Second},
		{"rejected", "failure", 0},
	} {
		t.Run(tc.state, func(t *testing.T) {
			fake := clock.NewFake(epoch)
			sim, err := ghsim.New(ghsim.Options{Clock: fake, QueuedFor: time.Second, RunFor: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer sim.Close()
			sim.AddToken("ghp_clock", "octocat", false)
			repo := sim.AddRepo("o", "r")
			sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Environment: &ghsim.Environment{Name: "production", Reviewers: []string{"octocat"}, Manual: true}})
			id := sim.CreateRun(repo, "deploy.yml", "main", "octocat", nil, 0)
			c := newRawClient(t, sim, false)
			runPath := fmt.Sprintf("/repos/o/r/actions/runs/%d", id)
			status := func() (string, any) {
				var run struct {
					Status     string `json:"status"`
					Conclusion any    `json:"conclusion"`
				}
				c.do("GET", runPath, nil, &run)
				return run.Status, run.Conclusion
			}
			review := func(envID int64, state string) int {
				return c.do("POST", runPath+"/pending_deployments", map[string]any{"environment_ids": []int64{envID}, "state": state, "comment": "by hand"}, nil).StatusCode
			}

			if got := review(1, tc.state); got != http.StatusUnprocessableEntity {
				t.Errorf("review of a queued run: %d, want 422", got)
			}
			fake.Advance(24 * time.Hour)
			if st, _ := status(); st != "waiting" {
				t.Fatalf("a day later, unreviewed: %s, want waiting", st)
			}
			var pending []struct {
				Environment struct {
					ID   int64  `json:"id"`
					Name string `json:"name"`
				} `json:"environment"`
			}
			c.do("GET", runPath+"/pending_deployments", nil, &pending)
			if len(pending) != 1 || pending[0].Environment.Name != "production" {
				t.Fatalf("pending deployments %+v", pending)
			}
			envID := pending[0].Environment.ID
			if got := review(envID+1, tc.state); got != http.StatusUnprocessableEntity {
				t.Errorf("review for another environment: %d, want 422", got)
			}
			var deployments []struct {
				Environment string `json:"environment"`
				Creator     struct {
					Login string `json:"login"`
				} `json:"creator"`
			}
			resp := c.do("POST", runPath+"/pending_deployments", map[string]any{"environment_ids": []int64{envID}, "state": tc.state, "comment": "by hand"}, &deployments)
			if resp.StatusCode != http.StatusOK || len(deployments) != 1 || deployments[0].Environment != "production" || deployments[0].Creator.Login != "octocat" {
				t.Fatalf("review: %d %+v, want the deployment to production by octocat", resp.StatusCode, deployments)
			}
			if got := review(envID, tc.state); got != http.StatusUnprocessableEntity {
				t.Errorf("second review: %d, want 422", got)
			}
			fake.Advance(tc.runFor)
			if st, concl := status(); st != "completed" || concl != tc.conclusion {
				t.Errorf("after the review: %s/%v, want completed/%s", st, concl, tc.conclusion)
			}
		})
	}
}
