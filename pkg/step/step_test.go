package step

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

const tok = "ghp_steprun_token"

func newRunner(t *testing.T, opts ghsim.Options) (*Runner, *ghsim.Server) {
	t.Helper()
	sim, pool := simtest.Start(t, opts)
	repo := sim.AddRepo("example", "test")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "test.yaml", Inputs: []string{"greeting"}})
	sim.AddToken(tok, "octocat", false)
	return &Runner{Clients: pool, Dispatcher: &dispatch.Dispatcher{Settle: 300 * time.Millisecond}, Checker: &wait.Checker{}}, sim
}

func kargoCreds(_ context.Context, repoURL string) (*credentials.Credentials, error) {
	if repoURL == "https://github.com/example/test" {
		return &credentials.Credentials{Token: tok}, nil
	}
	return nil, nil
}

func TestDispatchStep(t *testing.T) {
	r, sim := newRunner(t, ghsim.Options{})
	cfg := map[string]any{"repoURL": "https://github.com/example/test", "workflowFile": "test.yaml", "ref": "main", "inputs": map[string]any{"greeting": "hola"}, "timeout": 120}
	tests := []struct {
		name       string
		state      map[string]any
		cfg        map[string]any
		creds      func(context.Context, string) (*credentials.Credentials, error)
		status     Status
		final      bool
		dispatches int
		runID      any
		msg        string
	}{
		{name: "dispatches", cfg: cfg, creds: kargoCreds, status: StatusSucceeded, dispatches: 1},
		{name: "earlier runID as float64 (state reloaded)", state: map[string]any{"d": map[string]any{"runID": float64(7000000123)}}, cfg: cfg, creds: kargoCreds,
			status: StatusSucceeded, runID: int64(7000000123), msg: "not dispatching again"},
		{name: "earlier runID as int64", state: map[string]any{"d": map[string]any{"runID": int64(42)}}, cfg: cfg, creds: kargoCreds, status: StatusSucceeded, runID: int64(42)},
		{name: "earlier runID as string", state: map[string]any{"d": map[string]any{"runID": "43"}}, cfg: cfg, creds: kargoCreds, status: StatusSucceeded, runID: int64(43)},
		{name: "another step's runID is not ours", state: map[string]any{"other": map[string]any{"runID": int64(44)}}, cfg: cfg, creds: kargoCreds, status: StatusSucceeded, dispatches: 1},
		{name: "bad config", cfg: map[string]any{"repoURL": "https://github.com/example/test"}, creds: kargoCreds, status: StatusFailed, final: true, msg: "workflowFile: is required"},
		{name: "no credentials", cfg: map[string]any{"repoURL": "https://github.com/example/other", "workflowFile": "test.yaml", "ref": "main"}, creds: kargoCreds,
			status: StatusErrored, final: true, msg: "no Git credentials for https://github.com/example/other in project kargo-demo"},
		{name: "no credentials capability", cfg: cfg, status: StatusErrored, final: true, msg: "access-credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim.ResetStats()
			res, err := r.Dispatch(context.Background(), &Context{Project: "kargo-demo", Alias: "d", Config: tt.cfg, SharedState: tt.state, Credentials: tt.creds})
			if res.Status != tt.status || (err != nil) != (tt.status != StatusSucceeded) || (err != nil && failure.IsFinal(err) != tt.final) {
				t.Fatalf("result %+v, err %v", res, err)
			}
			if !strings.Contains(res.Message, tt.msg) {
				t.Fatalf("message %q lacks %q", res.Message, tt.msg)
			}
			if got := sim.Stats().Dispatches; got != tt.dispatches {
				t.Fatalf("%d dispatches, want %d", got, tt.dispatches)
			}
			if tt.status == StatusSucceeded {
				id, ok := res.Output["runID"].(int64)
				if !ok || (tt.runID != nil && id != tt.runID) {
					t.Fatalf("output %#v: runID must be an int64", res.Output)
				}
			}
		})
	}
}

func TestDispatchLegacyFormatReadsTheSecret(t *testing.T) {
	r, sim := newRunner(t, ghsim.Options{})
	legacy := func(_ context.Context, name string) (*credentials.Credentials, error) {
		if name != "github-credentials" {
			return nil, nil
		}
		return &credentials.Credentials{Token: tok, BaseURL: sim.URL + "/api/v3", Source: "Secret " + name}, nil
	}
	res, err := r.Dispatch(context.Background(), &Context{Project: "kargo-demo", Alias: "d", LegacyCredentials: legacy, Config: map[string]any{
		"credentials": map[string]any{"secretName": "github-credentials"}, "owner": "example", "repo": "test", "workflowFile": "test.yaml", "ref": "main"}})
	if err != nil || res.Status != StatusSucceeded || !strings.Contains(res.Message, "v1.8 configuration format") || !strings.Contains(res.Message, "repoURL: "+sim.RepoURL("example", "test")) {
		t.Fatalf("%+v, %v", res, err)
	}
}
