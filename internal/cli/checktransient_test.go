package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// GitHub failing to answer a dry run's reads (502 on every try) was
// "1 problem found", exit 1, as if the step were wrong; check's help says
// 75 when GitHub could not be asked. The report says transient, and a
// problem of the step (a 404 for a missing file) stays exit 1.
func TestDryRunGitHubFailingIsTransient(t *testing.T) {
	tests := []struct {
		name      string
		fault     *ghsim.Fault
		workflow  string
		exit      int
		transient bool
	}{
		{"contents 502", &ghsim.Fault{Route: "contents", Status: 502}, "checked.yml", ExitTransient, true},
		{"repository 502", &ghsim.Fault{Route: "get-repo", Status: 502}, "checked.yml", ExitTransient, true},
		{"a missing file", nil, "nope.yml", ExitFinal, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCheckFixture(t)
			if tt.fault != nil {
				f.sim.InjectFault(tt.fault)
			}
			code := f.run(t, "dispatch", "--dry-run", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", tt.workflow, "--ref", "main", "--input", "environment=prod")
			var out struct {
				DryRun struct{ Transient bool }
			}
			if err := json.Unmarshal(f.stdout.Bytes(), &out); err != nil {
				t.Fatalf("stdout %q: %v", f.stdout.String(), err)
			}
			if code != tt.exit || out.DryRun.Transient != tt.transient {
				t.Fatalf("exit %d (want %d), transient %v: %s", code, tt.exit, out.DryRun.Transient, f.stderr.String())
			}
			if tt.transient && !strings.Contains(f.stderr.String(), "because GitHub could not be asked") {
				t.Fatalf("stderr %s", f.stderr.String())
			}
			if st := f.sim.Stats(); st.ByRoute["dispatch"] != 0 {
				t.Fatalf("%d dispatches", st.ByRoute["dispatch"])
			}
		})
	}
}
