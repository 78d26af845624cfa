package steps

import (
	"strings"
	"testing"
	"time"

	kargoapi "github.com/akuity/kargo/api/v1alpha1"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// Kargo's engine runs a build, waits for it with outputsArtifact, and a
// later step's expression reads one of the outputs from the Promotion's
// state (saved through JSON between reconciles): the deployment is
// dispatched with the digest the build computed.
func TestKargoEngineHandsTheRunsOutputsToALaterStep(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{QueuedFor: 200 * time.Millisecond, RunFor: 200 * time.Millisecond}, "testdata/stage-outputs.yaml", ghsim.Workflow{
		Artifacts: []ghsim.Artifact{{Name: "outputs", Zip: ghsim.ZipFiles(map[string][]byte{"outputs.json": []byte(`{"imageDigest": "sha256:4b1d", "replicas": 3}`)})}},
	})
	res, _ := f.promote(t, f.controller(), promoCtx(f, "uat.outputs"))
	if res.Status != kargoapi.PromotionPhaseSucceeded {
		t.Fatalf("promotion %s: %s", res.Status, res.Message)
	}
	wait, _ := roundTrip(t, res.State)["wait"].(map[string]any)
	outputs, _ := wait["outputs"].(map[string]any)
	if outputs["imageDigest"] != "sha256:4b1d" || outputs["replicas"] != float64(3) {
		t.Fatalf("the wait step's outputs in the Promotion's state: %#v", wait)
	}
	runs := f.sim.Runs(f.repo)
	if len(runs) != 2 || runs[1].Inputs["greeting"] != "sha256:4b1d" || runs[1].Inputs["environment"] != "3" {
		t.Fatalf("runs %+v: the deployment did not get the build's outputs", runs)
	}
}

// A failed run's step message in the Promotion carries the failing step's
// last log lines, and its failure output is in the state.
func TestKargoEngineShowsTheFailingStepsLog(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{QueuedFor: 200 * time.Millisecond, RunFor: 200 * time.Millisecond}, "testdata/stage.yaml",
		ghsim.Workflow{Conclusion: "failure", Jobs: []ghsim.Job{{Name: "deploy", Steps: []string{"Checkout", "kubectl apply"}, FailAt: 2,
			Log: []string{`error: deployments.apps "my-app" is forbidden`}}}})
	res, _ := f.promote(t, f.controller(), promoCtx(f, "uat.failed"))
	last := res.StepExecutionMetadata[len(res.StepExecutionMetadata)-1]
	if res.Status != kargoapi.PromotionPhaseFailed || !strings.Contains(last.Message, `(the workflow's own output): «Run kubectl apply ⏎ kubectl apply ⏎ error: deployments.apps "my-app" is forbidden ⏎ Error: Process completed with exit code 1.»`) {
		t.Fatalf("%s: wait step %s %q", res.Status, last.Status, last.Message)
	}
	out, _ := roundTrip(t, res.State)[last.Alias].(map[string]any)
	if fo, _ := out["failure"].(map[string]any); fo["job"] != "deploy" || fo["step"] != "kubectl apply" || len(fo["excerpt"].([]any)) != 4 {
		t.Fatalf("failure output %#v", out["failure"])
	}
}
