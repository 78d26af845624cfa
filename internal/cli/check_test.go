package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

const checkedWorkflow = `name: Deploy
run-name: Deploy ${{ inputs.environment }} ${{ inputs.dispatch_key }}
on:
  push: {}
  workflow_dispatch:
    inputs:
      environment:
        type: choice
        options: [dev, prod]
        required: true
      replicas:
        type: number
      dispatch_key:
        type: string
jobs: {}
`

func newCheckFixture(t *testing.T) *cliFixture {
	t.Helper()
	f := newCLIFixture(t, ghsim.Options{})
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "checked.yml", Inputs: []string{"environment", "replicas", "dispatch_key"}, Content: checkedWorkflow})
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "untitled.yml", Inputs: []string{"dispatch_key"}, Content: "on:\n  workflow_dispatch:\n    inputs:\n      dispatch_key: {}\njobs: {}\n"})
	f.env["GH_TOKEN"] = testToken
	return f
}

func TestDryRunListsEveryProblemAndDispatchesNothing(t *testing.T) {
	f := newCheckFixture(t)
	code := f.run(t, "dispatch", "--dry-run", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "checked.yml", "--ref", "main",
		"--input", "environment=qa", "--input", "replicas=three", "--input", "tag=1", "--correlation-input", "key")
	if code != ExitFinal {
		t.Fatalf("exit %d, want %d; stderr %s", code, ExitFinal, f.stderr.String())
	}
	var out struct {
		DryRun struct {
			Problems []struct{ Field, Message string }
		}
	}
	if err := json.Unmarshal(f.stdout.Bytes(), &out); err != nil {
		t.Fatalf("stdout %q: %v", f.stdout.String(), err)
	}
	want := []string{"inputs.environment", "inputs.replicas", "inputs.tag", "correlationInput", "correlationInput"}
	if len(out.DryRun.Problems) != len(want) {
		t.Fatalf("problems %+v, want fields %v", out.DryRun.Problems, want)
	}
	for i, p := range out.DryRun.Problems {
		if p.Field != want[i] || !strings.Contains(f.stderr.String(), p.Message) {
			t.Errorf("problem %d %+v, want field %s, named on stderr", i, p, want[i])
		}
	}
	if st := f.sim.Stats(); st.ByRoute["dispatch"] != 0 {
		t.Fatalf("%d POSTs, want 0", st.ByRoute["dispatch"])
	}
}

func TestDryRunOfACleanDispatchExitsZero(t *testing.T) {
	f := newCheckFixture(t)
	code := f.run(t, "dispatch", "--dry-run", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "checked.yml", "--ref", "main",
		"--input", "environment=prod", "--input", "replicas=3", "--correlation-input", "dispatch_key")
	if code != ExitOK || !strings.Contains(f.stdout.String(), `"problems":[]`) {
		t.Fatalf("exit %d, stdout %s, stderr %s", code, f.stdout.String(), f.stderr.String())
	}
	if st := f.sim.Stats(); st.ByRoute["dispatch"] != 0 || st.ByRoute["contents"] != 1 {
		t.Fatalf("stats %+v, want one read of the file and no dispatch", st.ByRoute)
	}
}

func TestDryRunRefusesWait(t *testing.T) {
	f := newCheckFixture(t)
	if code := f.run(t, "dispatch", "--dry-run", "--wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "checked.yml", "--ref", "main"); code != ExitFinal {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(f.stderr.String(), "--dry-run") || f.sim.Stats().Requests != 0 {
		t.Fatalf("stderr %s, %d requests", f.stderr.String(), f.sim.Stats().Requests)
	}
}

func TestCheckManifestChecksEveryDispatchStep(t *testing.T) {
	f := newCheckFixture(t)
	repoURL := f.sim.RepoURL("myorg", "my-app")
	manifest := writeFile(t, "stages.yaml", `apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata: {name: prod, namespace: demo}
spec:
  promotionTemplate:
    spec:
      steps:
      - uses: git-clone
        config: {repoURL: `+repoURL+`}
      - uses: gha-dispatch-workflow
        as: deploy
        config:
          repoURL: `+repoURL+`
          workflowFile: checked.yml
          ref: main
          correlationInput: dispatch_key
          timeout: ${{ vars.timeout }}
          inputs:
            environment: ${{ ctx.stage }}
            replicas: 2
      - uses: gha-dispatch-workflow
        as: untitled
        config:
          repoURL: `+repoURL+`
          workflowFile: untitled.yml
          ref: main
          correlationInput: dispatch_key
---
apiVersion: kargo.akuity.io/v1alpha1
kind: PromotionTask
metadata: {name: deploy-task, namespace: demo}
spec:
  steps:
  - uses: gha-dispatch-workflow
    config:
      repoURL: `+repoURL+`
      workflowFile: checked.yml
      ref: ${{ vars.branch }}
`)
	code := f.run(t, "check", manifest)
	if code != ExitFinal {
		t.Fatalf("exit %d, want %d; stderr %s", code, ExitFinal, f.stderr.String())
	}
	var out struct {
		Steps []struct {
			Manifest, Step string
			Problems       []struct{ Field, Message string }
			NotChecked     []string
		}
	}
	if err := json.Unmarshal(f.stdout.Bytes(), &out); err != nil {
		t.Fatalf("stdout %q: %v", f.stdout.String(), err)
	}
	if len(out.Steps) != 3 {
		t.Fatalf("steps %+v, want 3", out.Steps)
	}
	deploy, untitled, task := out.Steps[0], out.Steps[1], out.Steps[2]
	if deploy.Manifest != "Stage/prod" || deploy.Step != "deploy" || len(deploy.Problems) != 0 ||
		strings.Join(deploy.NotChecked, ",") != "timeout (an expression),inputs.environment" {
		t.Errorf("deploy %+v: want no problems, timeout and environment not checked", deploy)
	}
	if len(untitled.Problems) != 1 || untitled.Problems[0].Field != "correlationInput" || !strings.Contains(untitled.Problems[0].Message, "run-name") {
		t.Errorf("untitled %+v: want the run-name problem", untitled)
	}
	if task.Manifest != "PromotionTask/deploy-task" || task.Step != "#1" || len(task.Problems) != 0 || len(task.NotChecked) != 1 || !strings.HasPrefix(task.NotChecked[0], "ref (an expression") {
		t.Errorf("task %+v: want the ref not checked", task)
	}
	if st := f.sim.Stats(); st.ByRoute["dispatch"] != 0 || st.ByRoute["contents"] != 2 {
		t.Fatalf("stats %+v, want two reads and no dispatch", st.ByRoute)
	}
}
