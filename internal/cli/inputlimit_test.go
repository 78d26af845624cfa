package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// An Enterprise Server before 3.21 takes 10 inputs and says so with 422
// ("you may only define up to 10 `inputs` for a `workflow_dispatch`
// event"); the error explained it as a workflow without a workflow_dispatch
// trigger, sending the user to the wrong fix.
func TestInputLimitOfAnOlderServerIsExplained(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{Answer: ghsim.AnswerGHES320})
	f.env["GH_TOKEN"] = testToken
	args := []string{"dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main"}
	for i := 0; i < 11; i++ {
		args = append(args, "--input", fmt.Sprintf("x%d=v", i))
	}
	if code := f.run(t, args...); code != ExitFinal {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	stderr := f.stderr.String()
	if !strings.Contains(stderr, "up to 10 `inputs`") || !strings.Contains(stderr, "takes fewer inputs than sent") || strings.Contains(stderr, "trigger") {
		t.Fatalf("stderr %s: want the limit explained, not a missing trigger", stderr)
	}
}
