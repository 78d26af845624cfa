package step

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// A library caller needs nothing but pkg/step, pkg/dispatch and pkg/wait:
// a client from NewClient, a dispatch, and a check of its run.
func TestLibraryDispatchesAndChecksThroughNewClient(t *testing.T) {
	sim, pool := simtest.Start(t, ghsim.Options{RunDelay: 10 * time.Millisecond})
	sim.AddWorkflow(sim.AddRepo("myorg", "my-app"), ghsim.Workflow{File: "deploy.yml"})
	sim.AddToken("ghp_library_token", "octocat", false)
	c, err := NewClient("https://github.com/myorg/my-app", Credentials{Token: "ghp_library_token", Source: "test"}, ClientOptions{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	run, err := (&dispatch.Dispatcher{}).Dispatch(context.Background(), c, dispatch.Request{WorkflowFile: "deploy.yml", Ref: "main"}, "")
	if err != nil || run.Method != dispatch.ByRunDetails {
		t.Fatalf("%+v, %v", run, err)
	}
	if _, err := (&wait.Checker{}).Check(context.Background(), c, run.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient("http://ghe.example.com/o/r", Credentials{Token: "x"}, ClientOptions{}); err == nil {
		t.Fatalf("an http:// URL without AllowHTTP: %v", err)
	}
}

// Progress is structured: a sentence for people, the dispatch's facts as
// attributes for operators, cleaned like every message.
func TestDispatchLogsWithFields(t *testing.T) {
	sim, pool := simtest.Start(t, ghsim.Options{RunDelay: 10 * time.Millisecond})
	sim.AddWorkflow(sim.AddRepo("example", "test"), ghsim.Workflow{File: "test.yaml", Inputs: []string{"greeting", "dispatch_key"}})
	sim.AddToken(tok, "octocat", false)
	var buf bytes.Buffer
	r := NewRunner()
	r.Clients = pool
	sc := &Context{Alias: "dispatch", Config: dispatchCfg, Credentials: kargoCreds, Log: slog.New(slog.NewJSONHandler(&buf, nil))}
	if res, err := r.Dispatch(context.Background(), sc); err != nil || res.Status != StatusSucceeded {
		t.Fatalf("%+v, %v", res, err)
	}
	var first map[string]any
	if err := json.Unmarshal(bytes.SplitN(buf.Bytes(), []byte("\n"), 2)[0], &first); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if first["workflow"] != "test.yaml" || first["ref"] != "main" || first["repo"] != "example/test" || first["phase"] != "recorded" ||
		!strings.HasPrefix(first["msg"].(string), "dispatching test.yaml on main") || strings.Contains(buf.String(), tok) {
		t.Fatalf("log line %v", first)
	}
}
