package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// TestInputsWithControlCharactersAreRefused: a workflow hands inputs to
// shell commands and logs, where NUL, ESC or CR hide or rewrite text; only
// newline and tab, which multi-line values need, pass.
func TestInputsWithControlCharactersAreRefused(t *testing.T) {
	tests := []struct {
		name   string
		inputs map[string]any
		want   string // the problem, or "" when accepted
	}{
		{"NUL", map[string]any{"environment": "prod\x00"}, "inputs.environment: contains the control character U+0000 at byte 4"},
		{"ESC sequence", map[string]any{"environment": "\x1b[31mprod"}, "inputs.environment: contains the control character U+001B at byte 0"},
		{"carriage return", map[string]any{"notes": "a\r\nb"}, "inputs.notes: contains the control character U+000D at byte 1"},
		{"bell", map[string]any{"tag": "1.0\a"}, "inputs.tag: contains the control character U+0007"},
		{"DEL", map[string]any{"tag": "1\x7f"}, "inputs.tag: contains the control character U+007F"},
		{"C1 control", map[string]any{"tag": "1\u009b2"}, "inputs.tag: contains the control character U+009B"},
		{"in the name", map[string]any{"env\x1b": "prod"}, `inputs: the input name "env\x1b" contains the control character U+001B at byte 3`},
		{"newline and tab pass", map[string]any{"notes": "line 1\n\tline 2\n"}, ""},
		{"unicode text passes", map[string]any{"notes": "déploiement ✓"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := map[string]any{"repoURL": "https://github.com/myorg/my-app", "workflowFile": "deploy.yml", "ref": "main", "inputs": tt.inputs}
			d, err := ParseDispatch(cfg, repourl.Options{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				for k, v := range tt.inputs {
					if d.Inputs[k] != v {
						t.Fatalf("inputs.%s = %q, want %q", k, d.Inputs[k], v)
					}
				}
				return
			}
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || !strings.HasPrefix(cerr.Problems[0].String(), tt.want) {
				t.Fatalf("err = %v, want one problem %q", err, tt.want)
			}
		})
	}
}
