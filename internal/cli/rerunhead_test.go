package cli

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// A rerun that finds its earlier run by the key (attribution
// earlier-dispatch) found it in a listing, which carries the run's commit:
// the output has headSHA and headBranch, as the first dispatch's had. It
// had neither.
func TestRerunPrintsTheEarlierRunsCommit(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "keyed.yml", Inputs: []string{"dispatch_key"}, RunName: "Deploy ${{ inputs.dispatch_key }}"})
	f.env["GITHUB_TOKEN"] = testToken
	args := []string{"dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "keyed.yml", "--ref", "main",
		"--correlation-input", "dispatch_key", "--correlation-seed", "kargo-demo/uat.01jxyz.abc/deploy"}
	type result struct{ RunID, Attribution, HeadSHA, HeadBranch string }
	read := func() result {
		var out struct {
			RunID                            json.Number
			Attribution, HeadSHA, HeadBranch string
		}
		if err := json.Unmarshal(f.stdout.Bytes(), &out); err != nil {
			t.Fatalf("stdout %q: %v", f.stdout.String(), err)
		}
		return result{out.RunID.String(), out.Attribution, out.HeadSHA, out.HeadBranch}
	}
	if code := f.run(t, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	first := read()
	f.clock.Advance(time.Minute)
	if code := f.run(t, args...); code != 0 {
		t.Fatalf("rerun: exit %d: %s", code, f.stderr.String())
	}
	rerun := read()
	if rerun.Attribution != "earlier-dispatch" || rerun.RunID != first.RunID || rerun.HeadSHA == "" || rerun.HeadSHA != first.HeadSHA || rerun.HeadBranch != "main" {
		t.Fatalf("rerun %+v, first %+v: want the same run with its commit", rerun, first)
	}
	if n := len(f.sim.Runs(f.repo)); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
}
