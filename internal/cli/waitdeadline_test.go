package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// With a poll interval longer than what is left of --timeout, wait stopped
// at once saying "the wait timeout of 3s passed" (it had not), and a 30s
// interval cut a 45s timeout to 30s. It stops when the timeout passes, with
// no check beyond those the interval allows, and says the timeout as typed.
func TestWaitStopsWhenItsTimeoutPasses(t *testing.T) {
	tests := []struct {
		poll, timeout string
		elapsed       time.Duration
		checks        int
		says          string
	}{
		{"2h", "3s", 3 * time.Second, 1, "the wait timeout of 3s passed"},
		{"30s", "45s", 45 * time.Second, 2, "the wait timeout of 45s passed"},
		{"2h", "1h", time.Hour, 1, "the wait timeout of 1h passed"},
	}
	for _, tt := range tests {
		t.Run(tt.poll+" within "+tt.timeout, func(t *testing.T) {
			f := newCLIFixture(t, ghsim.Options{QueuedFor: 24 * time.Hour})
			f.env["GH_TOKEN"] = testToken
			id := f.sim.CreateRun(f.repo, "deploy.yml", "main", "octocat", nil, 0)
			f.sim.ResetStats()
			start := f.clock.Now()
			code := f.run(t, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", jsonNumber(id), "--poll-interval", tt.poll, "--timeout", tt.timeout)
			if code != ExitTransient || !strings.Contains(f.stderr.String(), tt.says) {
				t.Fatalf("exit %d: %s\nwant %q", code, f.stderr.String(), tt.says)
			}
			if got := f.clock.Now().Sub(start); got != tt.elapsed {
				t.Fatalf("stopped after %s on the clock, want %s", got, tt.elapsed)
			}
			if n := f.sim.Stats().ByRoute["get-run"]; n != tt.checks {
				t.Fatalf("%d checks of the run, want %d", n, tt.checks)
			}
		})
	}
}
