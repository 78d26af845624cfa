package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// A name actions/upload-artifact refuses is named with the field and reads
// as a sentence ("a/b" is not an artifact name, …): it read `"a/b" an
// artifact name cannot hold`.
func TestOutputsArtifactNameProblem(t *testing.T) {
	for _, name := range []string{"a/b", "../x", `a\b`, "a:b", "two\nlines"} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseWait(map[string]any{"repoURL": "https://github.com/o/r", "runID": 1, "outputsArtifact": name}, repourl.Options{})
			want := "outputsArtifact: " + fmt.Sprintf("%q", name) + " is not an artifact name, which cannot hold"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want %q", err, want)
			}
		})
	}
	if _, err := ParseWait(map[string]any{"repoURL": "https://github.com/o/r", "runID": 1, "outputsArtifact": "kargo-outputs"}, repourl.Options{}); err != nil {
		t.Fatalf("a valid name: %v", err)
	}
}
