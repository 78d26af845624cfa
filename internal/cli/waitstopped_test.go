package cli

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// A wait stopped by --timeout while the run goes on (exit 75) printed the
// run's commit and links but not its runID, the key a script retrying the
// wait reads. A run never found prints nothing on stdout.
func TestWaitStoppedPrintsTheRunID(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{QueuedFor: time.Hour})
	f.env["GH_TOKEN"] = testToken
	id := f.sim.CreateRun(f.repo, "deploy.yml", "main", "octocat", nil, 0)
	tests := []struct {
		name   string
		runID  string
		exit   int
		wantID int64 // 0: nothing on stdout
	}{
		{"run queued past --timeout", jsonNumber(id), ExitTransient, id},
		{"run never found", "999999", ExitFinal, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := f.run(t, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", tt.runID, "--timeout", "30s")
			if code != tt.exit {
				t.Fatalf("exit %d, want %d: %s", code, tt.exit, f.stderr.String())
			}
			if tt.wantID == 0 {
				if f.stdout.Len() != 0 {
					t.Fatalf("stdout %q, want nothing", f.stdout.String())
				}
				return
			}
			var out struct {
				RunID   int64  `json:"runID"`
				HeadSHA string `json:"headSHA"`
			}
			if err := json.Unmarshal(f.stdout.Bytes(), &out); err != nil || out.RunID != tt.wantID || out.HeadSHA == "" {
				t.Fatalf("stdout %q (%v), want runID %d and headSHA", f.stdout.String(), err, tt.wantID)
			}
		})
	}
}
