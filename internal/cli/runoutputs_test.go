package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// `wait --outputs-artifact`: the run's outputs in the JSON on stdout and
// as one outputs={...} line in $KARGO_OUTPUT, whose key is fixed.
func TestWaitCommandPrintsTheRunsOutputs(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{RunFor: 100 * time.Millisecond})
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "build.yml", Artifacts: []ghsim.Artifact{{Name: "release", Zip: ghsim.ZipFiles(map[string][]byte{
		"outputs.json": []byte(`{"imageDigest": "sha256:0f1e", "replicas": 3, "url": "https://x.example/?a=1\nb"}`)})}}})
	f.env["GITHUB_TOKEN"] = testToken
	id := f.sim.CreateRun(f.repo, "build.yml", "main", "octocat", nil, 0)
	out := filepath.Join(t.TempDir(), "out")
	f.env["KARGO_OUTPUT"] = out
	if code := f.run(t, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", jsonNumber(id), "--outputs-artifact", "release", "--poll-interval", "1s"); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	var res struct{ Outputs map[string]any }
	want := map[string]any{"imageDigest": "sha256:0f1e", "replicas": float64(3), "url": "https://x.example/?a=1 b"}
	if err := json.Unmarshal(f.stdout.Bytes(), &res); err != nil || !reflect.DeepEqual(res.Outputs, want) {
		t.Fatalf("stdout %q: %v", f.stdout.String(), err)
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), "\noutputs={\"imageDigest\":\"sha256:0f1e\",\"replicas\":3,\"url\":\"https://x.example/?a=1 b\"}\n") {
		t.Fatalf("KARGO_OUTPUT %q", b)
	}
	// dispatch --wait takes the flag too.
	if code := f.run(t, "dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "build.yml", "--ref", "main", "--wait", "--outputs-artifact", "release", "--poll-interval", "1s"); code != 0 {
		t.Fatalf("dispatch --wait: exit %d: %s", code, f.stderr.String())
	}
	res.Outputs = nil
	if err := json.Unmarshal(f.stdout.Bytes(), &res); err != nil || !reflect.DeepEqual(res.Outputs, want) {
		t.Fatalf("dispatch --wait stdout %q: %v", f.stdout.String(), err)
	}
}

// A failed run: the failing step's last lines on stderr and the failure
// output on stdout.
func TestWaitCommandShowsTheFailingStepsLog(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{RunFor: 100 * time.Millisecond})
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "test.yml", Conclusion: "failure",
		Jobs: []ghsim.Job{{Name: "unit", Steps: []string{"Checkout", "go test"}, FailAt: 2, Log: []string{"--- FAIL: TestDeploy", "want 3, got 2"}}}})
	f.env["GITHUB_TOKEN"] = testToken
	id := f.sim.CreateRun(f.repo, "test.yml", "main", "octocat", nil, 0)
	code := f.run(t, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", jsonNumber(id), "--expected-conclusion", "success", "--poll-interval", "1s")
	if code != ExitFinal || !strings.Contains(f.stderr.String(), "«Run go test ⏎ go test ⏎ --- FAIL: TestDeploy ⏎ want 3, got 2 ⏎ Error: Process completed with exit code 1.»") {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	var res struct{ Failure map[string]any }
	if err := json.Unmarshal(f.stdout.Bytes(), &res); err != nil || res.Failure["job"] != "unit" || res.Failure["step"] != "go test" || len(res.Failure["excerpt"].([]any)) != 5 {
		t.Fatalf("stdout %q: %v", f.stdout.String(), err)
	}
}

// A bad artifact name is refused before any request.
func TestWaitCommandRefusesABadOutputsArtifact(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GITHUB_TOKEN"] = testToken
	code := f.run(t, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", "42", "--outputs-artifact", "a/b")
	if code != ExitFinal || !strings.Contains(f.stderr.String(), `--outputs-artifact: "a/b" is not an artifact name`) || f.sim.Stats().Requests != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
}
