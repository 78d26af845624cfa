package cli

import (
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// --settle longer than the time to look for the run kept the command
// running for the settle (two hours for --settle 2h --timeout 5) after a
// dispatch it could never attribute in time. Refused, named, before any
// request; a settle within the timeout is taken.
func TestDispatchRefusesASettleLongerThanItsTimeout(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent})
	f.env["GH_TOKEN"] = testToken
	repoURL := f.sim.RepoURL("myorg", "my-app")
	base := []string{"dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main"}
	cfg := writeFile(t, "step.yaml", "repoURL: "+repoURL+"\nworkflowFile: deploy.yml\nref: main\ntimeout: 30\n")
	tests := []struct {
		name string
		args []string
		want string // empty: accepted
	}{
		{"over --timeout", append(base, "--settle", "2h", "--timeout", "5"), "--settle 2h is longer than --timeout (5s)"},
		{"over the default timeout", append(base, "--settle", "90s"), "--settle 1m30s is longer than the default --timeout (1m)"},
		{"over the configuration's timeout", []string{"dispatch", "--config", cfg, "--settle", "45s"}, "--settle 45s is longer than timeout in the configuration (30s)"},
		{"within the timeout", append(base, "--settle", "5s", "--timeout", "120"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.sim.ResetStats()
			code := f.run(t, tt.args...)
			if tt.want == "" {
				if code != ExitOK {
					t.Fatalf("exit %d: %s", code, f.stderr.String())
				}
				return
			}
			if code != ExitFinal || !strings.Contains(f.stderr.String(), tt.want) {
				t.Fatalf("exit %d: %s\nwant %q", code, f.stderr.String(), tt.want)
			}
			if n := f.sim.Stats().Requests; n != 0 {
				t.Fatalf("%d requests, want none", n)
			}
		})
	}
}
