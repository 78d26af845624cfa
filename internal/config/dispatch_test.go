package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

func TestParseDispatch(t *testing.T) {
	valid := func() map[string]any {
		return map[string]any{"repoURL": "https://github.com/myorg/my-app", "workflowFile": "deploy.yml", "ref": "main"}
	}
	with := func(kv ...any) map[string]any {
		m := valid()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
				continue
			}
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		cfg      map[string]any
		problems []string // each must appear, in order, as "field: ..." prefixes
		check    func(*testing.T, *Dispatch)
	}{
		{name: "minimal", cfg: valid(), check: func(t *testing.T, d *Dispatch) {
			if d.Timeout != 60*time.Second || d.Legacy != nil || d.Inputs != nil {
				t.Fatalf("got %+v", d)
			}
		}},
		{name: "spec example (values as Kargo hands them)", cfg: with(
			"inputs", map[string]any{"environment": "prod", "image_tag": 1.1, "promotion_id": "p-1", "deploy_version": json.Number("1.10")},
			"timeout", 120, "insecureSkipTLSVerify", false),
			check: func(t *testing.T, d *Dispatch) {
				if d.Timeout != 120*time.Second || d.Inputs["image_tag"] != "1.1" || d.Inputs["deploy_version"] != "1.10" {
					t.Fatalf("got %+v", d)
				}
			}},
		{name: "timeout as float64 from JSON", cfg: with("timeout", float64(300)), check: func(t *testing.T, d *Dispatch) {
			if d.Timeout != 300*time.Second {
				t.Fatalf("timeout %v", d.Timeout)
			}
		}},
		{name: "everything wrong at once", cfg: map[string]any{"workflowFile": "../x.yml", "ref": 1.1, "timeout": 301, "color": "blue"},
			problems: []string{"color: unknown field", "ref: must be string, not number", "repoURL: is required", "timeout: must be at most 300", "workflowFile: \"../x.yml\" must not contain '..'"}},
		{name: "timeout below range", cfg: with("timeout", 0), problems: []string{"timeout: must be at least 1"}},
		{name: "timeout not integer", cfg: with("timeout", 1.5), problems: []string{"timeout: must be integer"}},
		{name: "workflow with directory", cfg: with("workflowFile", ".github/workflows/deploy.yml"), problems: []string{"workflowFile:"}},
		{name: "workflow without yaml ending", cfg: with("workflowFile", "deploy"), problems: []string{"workflowFile:"}},
		{name: "bad ref", cfg: with("ref", "feature..x"), problems: []string{"ref:"}},
		{name: "ref with space", cfg: with("ref", "my branch"), problems: []string{"ref:"}},
		{name: "bad repo URL", cfg: with("repoURL", "https://github.com/only-owner"), problems: []string{"repoURL:"}},
		{name: "nested input", cfg: with("inputs", map[string]any{"cfg": map[string]any{"a": 1}}), problems: []string{"inputs.cfg: is a nested object"}},
		{name: "null input", cfg: with("inputs", map[string]any{"x": nil}), problems: []string{"inputs.x:"}},
		{name: "too many inputs", cfg: with("inputs", manyInputs(26)), problems: []string{"inputs: has 26 entries; GitHub accepts at most 25"}},
		{name: "repoURL misspelt: one problem", cfg: with("repoURL", nil, "repoUrl", "https://github.com/myorg/my-app"),
			problems: []string{"repoUrl: unknown field; did you mean repoURL?"}},
		{name: "correlationInput with a space", cfg: with("correlationInput", "dispatch key"),
			problems: []string{`correlationInput: "dispatch key" is not a workflow input name (a letter or _, then letters, digits, _ or -)`}},
		{name: "short expectedHeadSHA", cfg: with("expectedHeadSHA", "abc123"),
			problems: []string{`expectedHeadSHA: "abc123" is not a full commit ID (40 or 64 hex digits)`}},
		{name: "25 inputs and the correlation input", cfg: with("inputs", manyInputs(25), "correlationInput", "dispatch_key"),
			problems: []string{"inputs: has 25 entries and correlationInput adds one; GitHub accepts at most 25"}},
		{name: "24 inputs and the correlation input", cfg: with("inputs", manyInputs(24), "correlationInput", "dispatch_key"), check: func(t *testing.T, d *Dispatch) {
			if len(d.Inputs) != 24 || d.CorrelationInput != "dispatch_key" {
				t.Fatalf("got %+v", d)
			}
		}},
		{name: "inputs too long", cfg: with("inputs", map[string]any{"blob": strings.Repeat("x", 65536)}), problems: []string{"inputs: is 65547 characters"}},
		{name: "legacy", cfg: map[string]any{"owner": "myorg", "repo": "my-app", "credentials": map[string]any{"secretName": "github-credentials"}, "workflowFile": "deploy.yml", "ref": "main"},
			check: func(t *testing.T, d *Dispatch) {
				if d.Legacy == nil || d.Legacy.Owner != "myorg" || d.Legacy.SecretName != "github-credentials" || d.RepoURL != "" {
					t.Fatalf("got %+v", d)
				}
			}},
		{name: "legacy missing credentials", cfg: map[string]any{"owner": "myorg", "repo": "my-app", "workflowFile": "deploy.yml", "ref": "main"},
			problems: []string{"credentials: is required in the v1.8 format"}},
		{name: "mixed formats", cfg: with("owner", "myorg"), problems: []string{"owner: cannot be combined with repoURL"}},
		{name: "legacy credentials without secretName", cfg: map[string]any{"owner": "o", "repo": "r", "credentials": map[string]any{}, "workflowFile": "deploy.yml", "ref": "main"},
			problems: []string{"credentials.secretName: is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDispatch(tt.cfg, repourl.Options{})
			if len(tt.problems) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tt.check(t, d)
				return
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("error = %v, want *config.Error", err)
			}
			if len(cerr.Problems) != len(tt.problems) {
				t.Fatalf("got %d problems, want %d: %v", len(cerr.Problems), len(tt.problems), err)
			}
			for i, want := range tt.problems {
				if got := cerr.Problems[i].String(); !strings.HasPrefix(got, want) {
					t.Errorf("problem %d = %q, want prefix %q", i, got, want)
				}
			}
		})
	}
}

func manyInputs(n int) map[string]any {
	m := map[string]any{}
	for i := 0; i < n; i++ {
		m[string(rune('a'+i%26))+strings.Repeat("x", i/26)+json.Number("0").String()] = "v"
	}
	return m
}

func TestRenderInput(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{"1.10", "1.10"}, {json.Number("1.10"), "1.10"}, {1000000, "1000000"}, {int64(1) << 53, "9007199254740992"},
		{float64(1000000), "1000000"}, {1e21, "1000000000000000000000"}, {1.1, "1.1"}, {0.000001, "0.000001"},
		{-2.5, "-2.5"}, {true, "true"}, {false, "false"}, {uint64(18446744073709551615), "18446744073709551615"}, {"", ""},
	}
	for _, tt := range tests {
		got, err := RenderInput(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("RenderInput(%#v) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []any{nil, []any{"a"}, map[string]any{}, struct{}{}} {
		if _, err := RenderInput(bad); err == nil {
			t.Errorf("RenderInput(%#v) accepted", bad)
		}
	}
}

// TestHostileInputIsRefused: everything here is refused by the parser, so
// no request is ever built from it.
func TestHostileInputIsRefused(t *testing.T) {
	base := func(field string, v any) map[string]any {
		m := map[string]any{"repoURL": "https://github.com/myorg/my-app", "workflowFile": "deploy.yml", "ref": "main"}
		m[field] = v
		return m
	}
	cases := map[string][]string{
		"workflowFile": {"a/b.yml", "../x.yml", "..yml", "x%2Fy.yml", "x?.yml", "x#.yml", "x\n.yml", "x\x00.yml", "deploy", "deploy.txt", "deploy.yml/", "/deploy.yml", ".yml", "-x.yml"},
		"ref":          {"main..x", "-x", "a b", "a~b", "a^b", "a:b", "a?b", "a*b", "a[b", `a\b`, "x.lock", ".x", "a/.x", "a//b", "/a", "a/", "a.", "@", "a@{b", "a\x7fb", "a\tb", "refs/heads/"},
		"repoURL": {"https://github.com/o$/r", "https://github.com/o/r%20x", "https://user:pw@github.com/o/r", "https://github.com/o/r?x=1", "https://github.com/o/r#f",
			"https://github.com/o/r/../../x", "https://github.com/%2e%2e/r", "file:///etc/passwd", "javascript:alert(1)", "https://github.com/o/r\r\nHost: evil"},
	}
	for field, values := range cases {
		for _, v := range values {
			_, err := ParseDispatch(base(field, v), repourl.Options{})
			var cerr *Error
			if !errors.As(err, &cerr) || !strings.HasPrefix(cerr.Problems[0].Field, field) {
				t.Errorf("%s %q: err = %v, want a problem naming %s", field, v, err, field)
			}
		}
	}
}
