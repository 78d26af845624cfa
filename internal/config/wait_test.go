package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

func TestParseWait(t *testing.T) {
	base := func(kv ...any) map[string]any {
		m := map[string]any{"repoURL": "https://github.com/example/test", "runID": 123}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		cfg      map[string]any
		runID    int64
		poll     time.Duration
		problems []string
	}{
		{name: "int from Kargo", cfg: base(), runID: 123},
		{name: "int64 from state", cfg: base("runID", int64(7104338002)), runID: 7104338002},
		{name: "float64 after state reload", cfg: base("runID", float64(7104338002)), runID: 7104338002},
		{name: "json.Number", cfg: base("runID", json.Number("42")), runID: 42},
		{name: "string of digits", cfg: base("runID", "7104338002"), runID: 7104338002},
		{name: "spec example", cfg: base("runID", "9", "expectedConclusion", "success", "pollInterval", "30s"), runID: 9, poll: 30 * time.Second},
		{name: "not digits", cfg: base("runID", "12x"), problems: []string{`runID: "12x" is not a run ID`}},
		{name: "zero", cfg: base("runID", 0), problems: []string{"runID: 0 is not a run ID"}},
		{name: "fraction", cfg: base("runID", 1.5), problems: []string{"runID: 1.5 is not a run ID"}},
		{name: "bool", cfg: base("runID", true), problems: []string{"runID:"}},
		{name: "missing runID", cfg: map[string]any{"repoURL": "https://github.com/o/r"}, problems: []string{"runID: is required"}},
		{name: "bad conclusion names the allowed values", cfg: base("expectedConclusion", "succeeded"),
			problems: []string{`expectedConclusion: "succeeded" is not a conclusion; use one of success, failure, cancelled, skipped, timed_out, action_required, neutral, stale`}},
		{name: "bad duration", cfg: base("pollInterval", "30"), problems: []string{`pollInterval: "30" is not a Go duration`}},
		{name: "too short", cfg: base("pollInterval", "10ms"), problems: []string{"pollInterval: 10ms is shorter than the minimum of 1s"}},
		{name: "legacy", cfg: map[string]any{"owner": "o", "repo": "r", "credentials": map[string]any{"secretName": "s"}, "runID": 5}, runID: 5},
		{name: "mixed", cfg: base("repo", "r"), problems: []string{"repo: cannot be combined with repoURL"}},
		{name: "unknown field", cfg: base("workflowFile", "x.yml"), problems: []string{"workflowFile: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := ParseWait(tt.cfg, repourl.Options{})
			if len(tt.problems) == 0 {
				if err != nil || w.RunID != tt.runID || w.PollInterval != tt.poll {
					t.Fatalf("got %+v, %v", w, err)
				}
				return
			}
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) != len(tt.problems) {
				t.Fatalf("err = %v, want %d problems", err, len(tt.problems))
			}
			for i, want := range tt.problems {
				if got := cerr.Problems[i].String(); !strings.HasPrefix(got, want) {
					t.Errorf("problem %q, want prefix %q", got, want)
				}
			}
		})
	}
}
