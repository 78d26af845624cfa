package step

import (
	"context"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
)

// The dispatch step refuses a correlation input that the run-name of a file
// this process read (a dry run) does not carry, before sending anything;
// with the file it never reads it again, so a run-details dispatch stays
// one counted request.
func TestDispatchStepChecksTheCachedRunName(t *testing.T) {
	cases := []struct {
		name       string
		runName    string
		status     Status
		dispatches int
	}{
		{"run-name without the key", "Deploy ${{ inputs.greeting }}", StatusFailed, 0},
		{"run-name with the key", "Deploy ${{ inputs.key }}", StatusSucceeded, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, sim := newRunner(t, ghsim.Options{})
			// newRunner's repository is on github.com; this one is on the
			// simulator's own host, so each case has its own cache entry.
			repo := sim.AddRepo("cached", "runname")
			sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"greeting", "key"}, RunName: tc.runName})
			r.Clients = simtest.Pool(sim)
			cfg := map[string]any{"repoURL": sim.RepoURL("cached", "runname"), "workflowFile": "deploy.yml", "ref": "main", "correlationInput": "key", "inputs": map[string]any{"greeting": "hola"}}
			sc := &Context{Project: "demo", Alias: "d", Config: cfg, Credentials: anyRepoCreds}
			rep, err := r.Check(context.Background(), sc)
			if err != nil {
				t.Fatal(err)
			}
			if (len(rep.Problems) == 0) != (tc.status == StatusSucceeded) {
				t.Fatalf("dry run problems %v", rep.Problems)
			}
			sim.ResetStats()
			var res Result
			for range 20 {
				if res, err = r.Dispatch(context.Background(), sc); res.Status != StatusRunning {
					break
				}
				sc.SharedState = map[string]any{"d": res.Output}
			}
			if res.Status != tc.status {
				t.Fatalf("result %+v, err %v", res, err)
			}
			if tc.status == StatusFailed && !strings.Contains(res.Message, "run-name") {
				t.Fatalf("message %q does not name the run-name", res.Message)
			}
			st := sim.Stats()
			if st.Dispatches != tc.dispatches || st.ByRoute["contents"]+st.ByRoute["get-repo"]+st.ByRoute["get-workflow"] != 0 {
				t.Fatalf("stats %+v: want %d dispatches and no request of the dry run's", st, tc.dispatches)
			}
		})
	}
}

func anyRepoCreds(context.Context, string) (*credentials.Credentials, error) {
	return &credentials.Credentials{Token: tok}, nil
}
