package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// TestDispatchCommitSettings: expectedHeadSHA takes a full commit ID of
// either hash (any case, kept lower-case), cancelOnMismatch needs it, and a
// ref that is a commit ID is refused with the way to run that commit.
func TestDispatchCommitSettings(t *testing.T) {
	sha1 := strings.Repeat("9f", 20)
	sha256 := strings.Repeat("Ab", 32)
	base := func(kv ...any) map[string]any {
		m := map[string]any{"repoURL": "https://github.com/myorg/my-app", "workflowFile": "deploy.yml", "ref": "main"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		cfg      map[string]any
		want     string // ExpectedHeadSHA after parsing
		problems []string
	}{
		{name: "sha-1 commit", cfg: base("expectedHeadSHA", sha1), want: sha1},
		{name: "sha-256 commit, upper case kept lower", cfg: base("expectedHeadSHA", sha256, "cancelOnMismatch", true), want: strings.ToLower(sha256)},
		{name: "short commit", cfg: base("expectedHeadSHA", "9f9f9f9"), problems: []string{"expectedHeadSHA: "}},
		{name: "not hex", cfg: base("expectedHeadSHA", strings.Repeat("g", 40)), problems: []string{"expectedHeadSHA: "}},
		{name: "cancel without a commit", cfg: base("cancelOnMismatch", true), problems: []string{"cancelOnMismatch: needs expectedHeadSHA"}},
		{name: "a commit as ref", cfg: base("ref", sha1), problems: []string{"ref: \"" + sha1 + "\" is a commit ID"}},
		{name: "a sha-256 commit as refs/heads/ ref", cfg: base("ref", "refs/heads/"+sha256), problems: []string{"ref: "}},
		{name: "a hex branch name of another length is a branch", cfg: base("ref", "deadbeef"), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDispatch(tt.cfg, repourl.Options{})
			if len(tt.problems) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if d.ExpectedHeadSHA != tt.want {
					t.Fatalf("ExpectedHeadSHA %q, want %q", d.ExpectedHeadSHA, tt.want)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want a config error, got %v", err)
			}
			for _, p := range tt.problems {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q lacks %q", err, p)
				}
			}
		})
	}
	_, err := ParseDispatch(base("ref", sha1), repourl.Options{})
	for _, advice := range []string{"branch or tag", "expectedHeadSHA", "input"} {
		if !strings.Contains(err.Error(), advice) {
			t.Errorf("the refusal of a commit ref does not say how to run it (%q): %v", advice, err)
		}
	}
}
