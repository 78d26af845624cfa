package cli

import (
	"strings"
	"testing"
)

// check's stderr said "no problems" for a step whose workflow file was
// never read (its repoURL an expression), with an empty repository in the
// line, and "1 problems found". Each step's line says what was checked.
func TestCheckSaysWhatWasChecked(t *testing.T) {
	f := newCheckFixture(t)
	repoURL := f.sim.RepoURL("myorg", "my-app")
	step := func(as, repo, env string) string {
		return `
      - uses: gha-dispatch-workflow
        as: ` + as + `
        config:
          repoURL: ` + repo + `
          workflowFile: checked.yml
          ref: main
          inputs: {environment: ` + env + `}`
	}
	manifest := writeFile(t, "stages.yaml", `apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata: {name: prod, namespace: demo}
spec:
  promotionTemplate:
    spec:
      steps:`+step("clean", repoURL, "prod")+step("partly", repoURL, `"${{ ctx.stage }}"`)+step("unread", `"${{ vars.repo }}"`, "prod")+step("wrong", repoURL, "qa")+"\n")
	if code := f.run(t, "check", manifest); code != ExitFinal {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	want := []string{
		"Stage/prod step clean: " + repoURL + " checked.yml at main: no problems; nothing was dispatched",
		"Stage/prod step partly: " + repoURL + " checked.yml at main: no problems in what could be checked; nothing was dispatched",
		"Stage/prod step unread: checked.yml at main not read, so not checked; nothing was dispatched",
		"error: 1 problem found; nothing was dispatched",
	}
	for _, w := range want {
		if !strings.Contains(f.stderr.String(), w+"\n") {
			t.Errorf("stderr lacks %q:\n%s", w, f.stderr.String())
		}
	}
}
