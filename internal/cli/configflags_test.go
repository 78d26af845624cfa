package cli

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

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
