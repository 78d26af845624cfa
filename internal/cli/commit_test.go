package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// dispatch prints the run's commit and its links in its JSON; with
// --expected-head-sha a moved branch fails naming both commits, and
// --cancel-on-mismatch cancels that run once and says GitHub's answer.
func TestDispatchPrintsTheRunsCommitAndLinks(t *testing.T) {
	freight, moved := strings.Repeat("9f", 20), strings.Repeat("b4", 20)
	f := newCLIFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, QueuedFor: time.Minute, RunFor: time.Hour})
	f.env["GH_TOKEN"] = testToken
	f.sim.SetRefCommit(f.repo, "main", freight)
	repoURL := "https://github.com/myorg/my-app"
	base := []string{"dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main"}
	if code := f.run(t, append(base, "--expected-head-sha", strings.ToUpper(freight))...); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	var out struct {
		RunID      int64            `json:"runID"`
		HeadSHA    string           `json:"headSHA"`
		HeadBranch string           `json:"headBranch"`
		Links      []map[string]any `json:"links"`
	}
	if err := json.Unmarshal(f.stdout.Bytes(), &out); err != nil {
		t.Fatalf("stdout %q: %v", f.stdout.String(), err)
	}
	if out.HeadSHA != freight || out.HeadBranch != "main" || len(out.Links) != 1 || !strings.HasPrefix(out.Links[0]["url"].(string), "https://github.com/myorg/my-app/actions/runs/") {
		t.Fatalf("output %s", f.stdout.String())
	}

	f.sim.SetRefCommit(f.repo, "main", moved)
	code := f.run(t, append(base, "--expected-head-sha", freight, "--cancel-on-mismatch")...)
	msg := f.stderr.String()
	if code != ExitFinal || !strings.Contains(msg, moved) || !strings.Contains(msg, freight) || !strings.Contains(msg, "GitHub accepted it (202)") {
		t.Fatalf("exit %d: %s", code, msg)
	}
	runs := f.sim.Runs(f.repo)
	if len(runs) != 2 || f.sim.Cancels(f.repo, runs[1].ID) != 1 || f.sim.Cancels(f.repo, runs[0].ID) != 0 {
		t.Fatalf("runs %+v: only the mismatched run is cancelled, once", runs)
	}
}

// Bad commit flags are refused naming the flag, before any request.
func TestDispatchCommitFlagsRefusedBeforeAnyRequest(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	sha := strings.Repeat("ab", 20)
	base := []string{"dispatch", "--repo-url", "https://github.com/myorg/my-app", "--workflow-file", "deploy.yml"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a commit as --ref", append(base, "--ref", sha), "--ref \"" + sha + "\" is a commit ID"},
		{"the way to pass a commit", append(base, "--ref", sha), "--expected-head-sha"},
		{"a short commit", append(base, "--ref", "main", "--expected-head-sha", "abc123"), "--expected-head-sha \"abc123\" must be a full commit ID"},
		{"cancel without a commit", append(base, "--ref", "main", "--cancel-on-mismatch"), "--cancel-on-mismatch needs --expected-head-sha"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.sim.ResetStats()
			if code := f.run(t, tt.args...); code != ExitFinal || !strings.Contains(f.stderr.String(), tt.want) {
				t.Fatalf("exit %d: %s\nwant %q", code, f.stderr.String(), tt.want)
			}
			if n := f.sim.Stats().Requests; n != 0 {
				t.Fatalf("%d requests", n)
			}
		})
	}
}

// wait prints the run's commit and links too.
func TestWaitPrintsTheRunsCommitAndLinks(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{QueuedFor: time.Minute, RunFor: time.Minute})
	f.env["GH_TOKEN"] = testToken
	sha := strings.Repeat("c0", 32) // a SHA-256 repository
	f.sim.SetRefCommit(f.repo, "main", sha)
	id := f.sim.CreateRun(f.repo, "deploy.yml", "main", "octocat", nil, 0)
	if code := f.run(t, "wait", "--repo-url", "https://github.com/myorg/my-app", "--run-id", jsonNumber(id), "--poll-interval", "30s"); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	var out struct {
		HeadSHA    string           `json:"headSHA"`
		HeadBranch string           `json:"headBranch"`
		Links      []map[string]any `json:"links"`
	}
	if err := json.Unmarshal(f.stdout.Bytes(), &out); err != nil || out.HeadSHA != sha || out.HeadBranch != "main" || len(out.Links) != 1 {
		t.Fatalf("stdout %s: %v", f.stdout.String(), err)
	}
}
