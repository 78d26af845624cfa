package cli

import (
	"encoding/json"
	"fmt"
	"testing"
)

// A dry run over GitHub's 25 inputs reported that alone (the config
// refusal) and hid every other problem; it reports them all at once, and
// dispatches nothing.
func TestDryRunOverTheInputLimitNamesEveryProblem(t *testing.T) {
	for _, extra := range []int{25, 30} {
		t.Run(fmt.Sprint(extra+1, " inputs"), func(t *testing.T) {
			f := newCheckFixture(t)
			args := []string{"dispatch", "--dry-run", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "checked.yml", "--ref", "main",
				"--input", "environment=qa", "--correlation-input", "key"}
			for i := 1; i < extra; i++ {
				args = append(args, "--input", fmt.Sprintf("x%02d=v", i))
			}
			if code := f.run(t, args...); code != ExitFinal {
				t.Fatalf("exit %d: %s", code, f.stderr.String())
			}
			var out struct {
				DryRun struct {
					Problems []struct{ Field, Message string }
				}
			}
			if err := json.Unmarshal(f.stdout.Bytes(), &out); err != nil {
				t.Fatalf("stdout %q: %v", f.stdout.String(), err)
			}
			fields := map[string]int{}
			for _, p := range out.DryRun.Problems {
				fields[p.Field]++
			}
			for _, want := range []string{"inputs", "inputs.environment", "inputs.x01", "correlationInput"} {
				if fields[want] == 0 {
					t.Errorf("no problem for %s in %+v", want, out.DryRun.Problems)
				}
			}
			if st := f.sim.Stats(); st.ByRoute["dispatch"] != 0 {
				t.Fatalf("%d dispatches", st.ByRoute["dispatch"])
			}
		})
	}
}
