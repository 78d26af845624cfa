package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// --verbose prints, on stderr at the end, the same counts the Kargo
// module's metrics have: here a dispatch with run details then a wait, each
// request GitHub answered, and how the run was found. stdout keeps only the
// output; without the flag nothing of it is printed.
func TestVerboseCounts(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{QueuedFor: 100 * time.Millisecond, RunFor: 100 * time.Millisecond})
	f.env["GITHUB_TOKEN"] = testToken
	repoURL := f.sim.RepoURL("myorg", "my-app")
	before := f.sim.Stats().Requests
	if code := f.run(t, "dispatch", "--verbose", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main", "--wait", "--poll-interval", "1s"); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	var out map[string]any
	if err := json.Unmarshal(f.stdout.Bytes(), &out); err != nil {
		t.Fatalf("stdout is not only the output: %q", f.stdout.String())
	}
	stderr := f.stderr.String()
	sent := f.sim.Stats().Requests - before
	for _, want := range []string{
		fmt.Sprintf("kargo-gha: requests: %d (", sent),
		"kargo-gha: requests dispatch 200: 1",
		"kargo-gha: requests get-run 200: ",
		"kargo-gha: dispatches run-details: 1",
		"kargo-gha: step calls wait Succeeded: 1",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	t.Log(stderr)
	if code := f.run(t, "dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main"); code != 0 || strings.Contains(f.stderr.String(), "kargo-gha: requests") {
		t.Fatalf("without --verbose: exit %d, stderr %q", code, f.stderr.String())
	}
}
