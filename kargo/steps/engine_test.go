package steps

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	kargoapi "github.com/akuity/kargo/api/v1alpha1"
	kargocreds "github.com/akuity/kargo/pkg/credentials"
	"github.com/akuity/kargo/pkg/promotion"

	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

const token = "ghp_kargo_engine_test"

type engineFixture struct {
	sim    *ghsim.Server
	repo   *ghsim.Repo
	engine *promotion.LocalEngine
	steps  []promotion.Step
	vars   []kargoapi.ExpressionVariable
}

// newEngineFixture runs Kargo's own LocalEngine with the registered steps,
// Kargo's credentials database answering for the repository, and
// api.github.com routed to the simulator (real TLS, real host name).
func newEngineFixture(t *testing.T, conclusion string) *engineFixture {
	t.Helper()
	sim, err := ghsim.New(ghsim.Options{QueuedFor: 300 * time.Millisecond, RunFor: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	repo := sim.AddRepo("example", "test")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "test.yaml", Inputs: []string{"greeting", "environment", "promotion_id", "deploy_version"}, Conclusion: conclusion})
	sim.AddToken(token, "kargo", false)

	saved := runner.Pool
	runner.Pool = &ghclient.Pool{RootCAs: sim.RootCAs(), DialContext: sim.DialContext}
	t.Cleanup(func() { runner.Pool = saved })

	credsDB := &kargocreds.FakeDB{GetFn: func(_ context.Context, ns string, typ kargocreds.Type, repoURL string) (*kargocreds.Credentials, error) {
		if ns == "kargo-demo" && typ == kargocreds.TypeGit && repoURL == "https://github.com/example/test" {
			return &kargocreds.Credentials{Username: "kargo", Password: token}, nil
		}
		return nil, nil
	}}
	kargoClient := fake.NewClientBuilder().Build()
	engine := promotion.NewLocalEngine(kargoClient, kargoClient, credsDB, nil, promotion.DefaultExprDataCacheFn)

	raw, err := os.ReadFile("testdata/stage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var stage kargoapi.Stage
	if err := yaml.UnmarshalStrict(raw, &stage); err != nil {
		t.Fatal(err)
	}
	promo := &kargoapi.Promotion{Spec: kargoapi.PromotionSpec{Steps: stage.Spec.PromotionTemplate.Spec.Steps}}
	return &engineFixture{sim: sim, repo: repo, engine: engine, steps: promotion.NewSteps(promo), vars: stage.Spec.PromotionTemplate.Spec.Vars}
}

// promote drives the promotion the way the controller does: Running results
// are saved (through JSON, as in the Promotion's status) and resumed from
// the current step.
func (f *engineFixture) promote(t *testing.T, promoCtx promotion.Context) (promotion.Result, int) {
	t.Helper()
	running := 0
	for i := 0; i < 100; i++ {
		res, err := f.engine.Promote(context.Background(), promoCtx, f.steps)
		if res.Status != kargoapi.PromotionPhaseRunning {
			return res, running
		}
		if err != nil {
			t.Logf("retrying after: %v", err)
		}
		running++
		promoCtx.StartFromStep = res.CurrentStep
		promoCtx.StepExecutionMetadata = res.StepExecutionMetadata
		promoCtx.State = roundTrip(t, res.State)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the promotion never finished")
	return promotion.Result{}, running
}

func roundTrip(t *testing.T, s promotion.State) promotion.State {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out promotion.State
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKargoEngineDispatchesThenWaits(t *testing.T) {
	f := newEngineFixture(t, "success")
	promoCtx := promotion.Context{Project: "kargo-demo", Stage: "uat", Promotion: "uat.01jxyz.abcdef0", Vars: f.vars}
	res, running := f.promote(t, promoCtx)
	if res.Status != kargoapi.PromotionPhaseSucceeded {
		t.Fatalf("promotion %s: %s", res.Status, res.Message)
	}
	if running == 0 {
		t.Fatal("the wait step never reported Running")
	}
	runs := f.sim.Runs(f.repo)
	if len(runs) != 1 {
		t.Fatalf("%d runs dispatched, want 1", len(runs))
	}
	in := runs[0].Inputs
	if in["greeting"] != "hola" || in["environment"] != "uat" || in["promotion_id"] != "uat.01jxyz.abcdef0" || in["deploy_version"] != "1.10" {
		t.Fatalf("inputs as GitHub received them: %v", in)
	}
	// The state went through JSON between reconciliations, so the number
	// comes back as float64, as it does in a controller.
	out, _ := res.State["dispatch-deployment"].(map[string]any)
	if id, ok := out["runID"].(float64); !ok || int64(id) != runs[0].ID {
		t.Fatalf("dispatch output %#v, want runID %d", out, runs[0].ID)
	}
	for _, m := range res.StepExecutionMetadata {
		if m.Status != kargoapi.PromotionStepStatusSucceeded {
			t.Fatalf("step %s: %s %s", m.Alias, m.Status, m.Message)
		}
	}

	// A controller restart on another pod starts over from step 0 with the
	// saved state: the dispatch step must find its run and not dispatch again.
	again, _ := f.promote(t, promotion.Context{Project: "kargo-demo", Stage: "uat", Promotion: "uat.01jxyz.abcdef0", Vars: f.vars, State: roundTrip(t, res.State)})
	if again.Status != kargoapi.PromotionPhaseSucceeded || len(f.sim.Runs(f.repo)) != 1 {
		t.Fatalf("after restart: %s %s, %d runs", again.Status, again.Message, len(f.sim.Runs(f.repo)))
	}
}

func TestKargoEngineFailsOnUnexpectedConclusion(t *testing.T) {
	f := newEngineFixture(t, "failure")
	res, _ := f.promote(t, promotion.Context{Project: "kargo-demo", Stage: "uat", Promotion: "uat.02", Vars: f.vars})
	if res.Status != kargoapi.PromotionPhaseFailed {
		t.Fatalf("promotion %s: %s", res.Status, res.Message)
	}
	last := res.StepExecutionMetadata[len(res.StepExecutionMetadata)-1]
	if last.Status != kargoapi.PromotionStepStatusFailed || !strings.Contains(last.Message, `conclusion "failure", expected "success"`) ||
		!strings.Contains(last.Message, "https://github.com/example/test/actions/runs/") {
		t.Fatalf("wait step: %s %q", last.Status, last.Message)
	}
}

func TestKargoEngineReportsMissingCredentials(t *testing.T) {
	f := newEngineFixture(t, "success")
	res, _ := f.promote(t, promotion.Context{Project: "other-project", Stage: "uat", Promotion: "uat.03", Vars: f.vars})
	first := res.StepExecutionMetadata[0]
	if res.Status != kargoapi.PromotionPhaseErrored || first.Status != kargoapi.PromotionStepStatusErrored ||
		!strings.Contains(first.Message, "no Git credentials for https://github.com/example/test in project other-project") {
		t.Fatalf("%s: step %s %q", res.Status, first.Status, first.Message)
	}
	if f.sim.Stats().Requests != 0 {
		t.Fatal("requests sent without credentials")
	}
}
