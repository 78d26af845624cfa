package cli

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/step"
)

// TestFlagsAddInputsToTheFile: --input adds to the inputs the file gives
// and replaces those of the same name; flags not given leave the file's
// values alone.
func TestFlagsAddInputsToTheFile(t *testing.T) {
	var got *DispatchOptions
	cmd := NewCmdDispatch(&Factory{}, func(_ context.Context, o *DispatchOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--config-json", `{"repoURL":"https://github.com/o/r","ref":"main","timeout":30,"inputs":{"a":"file","b":"file"}}`, "--input", "b=flag", "--input", "c=flag"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	cfg, err := got.stepConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"repoURL": "https://github.com/o/r", "ref": "main", "timeout": json.Number("30"),
		"inputs": map[string]any{"a": "file", "b": "flag", "c": "flag"}}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config %#v, want %#v", cfg, want)
	}
}

// TestFlagsBuildTheWaitAfterTheDispatch: dispatch --wait waits on the
// dispatch's repository, in its format (so with its credentials), with its
// TLS setting, and the wait flags.
func TestFlagsBuildTheWaitAfterTheDispatch(t *testing.T) {
	tests := []struct {
		name     string
		dispatch map[string]any
		want     map[string]any
	}{
		{"current", map[string]any{"repoURL": "https://github.com/o/r", "workflowFile": "d.yml", "ref": "main", "insecureSkipTLSVerify": true, "timeout": 90},
			map[string]any{"repoURL": "https://github.com/o/r", "insecureSkipTLSVerify": true, "runID": int64(7), "expectedConclusion": "success", "pollInterval": "30s"}},
		{"v1.8", map[string]any{"owner": "o", "repo": "r", "credentials": map[string]any{"secretName": "gh"}, "workflowFile": "d.yml", "ref": "main"},
			map[string]any{"owner": "o", "repo": "r", "credentials": map[string]any{"secretName": "gh"}, "runID": int64(7), "expectedConclusion": "success", "pollInterval": "30s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *DispatchOptions
			cmd := NewCmdDispatch(&Factory{}, func(_ context.Context, o *DispatchOptions) error { got = o; return nil })
			cmd.SetArgs([]string{"--wait", "--expected-conclusion", "success", "--poll-interval", "30s"})
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			cfg, err := got.waitConfig(step.NewRunner(), tt.dispatch, int64(7))
			if err != nil || !reflect.DeepEqual(cfg, tt.want) {
				t.Fatalf("wait config %#v, %v; want %#v", cfg, err, tt.want)
			}
		})
	}
}

func TestFlagsOverWaitConfig(t *testing.T) {
	var got *WaitOptions
	cmd := NewCmdWait(&Factory{}, func(_ context.Context, o *WaitOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--config-json", `{"repoURL":"https://github.com/o/r","runID":1,"expectedConclusion":"failure"}`, "--run-id", "42", "--expected-conclusion", "success", "--insecure-skip-tls-verify"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	cfg, err := got.stepConfig()
	want := map[string]any{"repoURL": "https://github.com/o/r", "runID": "42", "expectedConclusion": "success", "insecureSkipTLSVerify": true}
	if err != nil || !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config %#v, %v; want %#v", cfg, err, want)
	}
}

// --correlation-seed: a rerun of the same step (same seed, same config) is
// the same dispatch, so it prints the first run and sends nothing; another
// step of the same promotion gets another key.
func TestCorrelationSeedMakesARerunTheSameDispatch(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 500 * time.Millisecond})
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "keyed.yml", Inputs: []string{"environment", "dispatch_key"}, RunName: "Deploy ${{ inputs.dispatch_key }}"})
	f.env["GITHUB_TOKEN"] = testToken
	args := func(env string) []string {
		return []string{"dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "keyed.yml", "--ref", "main",
			"--input", "environment=" + env, "--correlation-input", "dispatch_key", "--correlation-seed", "kargo-demo/uat.01jxyz.abc"}
	}
	runID := func() any {
		var out map[string]any
		if err := json.Unmarshal(f.stdout.Bytes(), &out); err != nil {
			t.Fatalf("stdout %q", f.stdout.String())
		}
		return out["runID"]
	}
	if code := f.run(t, args("uat")...); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	first := runID()
	f.clock.Advance(time.Minute)
	if code := f.run(t, args("uat")...); code != 0 || runID() != first || !strings.Contains(f.stderr.String(), "nothing was dispatched") {
		t.Fatalf("rerun: exit %d, run %v (first %v): %s", code, runID(), first, f.stderr.String())
	}
	if code := f.run(t, args("prod")...); code != 0 || runID() == first {
		t.Fatalf("another step: exit %d, run %v: %s", code, runID(), f.stderr.String())
	}
	if n := len(f.sim.Runs(f.repo)); n != 2 {
		t.Fatalf("%d runs, want 2", n)
	}
}
