package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	kargoapi "github.com/akuity/kargo/api/v1alpha1"
	kargocreds "github.com/akuity/kargo/pkg/credentials"
	"github.com/akuity/kargo/pkg/promotion"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/step"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

const token = "ghp_kargo_engine_test"

// engineFixture runs Kargo's own promotion orchestrator (what LocalEngine
// runs) with the steps registered by Register, Kargo's credentials database
// answering for the repository, and api.github.com routed to the simulator
// (real TLS, real host names). Each controller is an orchestrator with its
// own Runner: a restart or another shard is a new controller.
type engineFixture struct {
	sim     *ghsim.Server
	repo    *ghsim.Repo
	pool    *ghclient.Pool
	credsDB kargocreds.Database
	steps   []promotion.Step
	vars    []kargoapi.ExpressionVariable
	// refusesRunDetails: the simulated host (GHES 3.20) refuses version
	// 2026-03-10 and then return_run_details, each with a 400 that sent
	// nothing, so the dispatch step's call sends the dispatch three times
	// (refused, refused, resent), once per process.
	refusesRunDetails bool

	mu        sync.Mutex
	callTimes []time.Duration
	calls     []engineCall
}

// engineCall is what one engine call did: the steps it ran and the GitHub
// requests the simulator answered meanwhile (meaningful only while one
// controller at a time calls).
type engineCall struct {
	from, to int // the steps run, first and last
	status   kargoapi.PromotionPhase
	requests int
	byRoute  map[string]int
}

func newEngineFixture(t *testing.T, opts ghsim.Options, stageFile string, wf ghsim.Workflow) *engineFixture {
	t.Helper()
	sim, err := ghsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	repo := sim.AddRepo("example", "test")
	wf.File = "test.yaml"
	wf.Inputs = []string{"greeting", "environment", "promotion_id", "deploy_version", "dispatch_key"}
	sim.AddWorkflow(repo, wf)
	sim.AddToken(token, "kargo", false)
	f := &engineFixture{sim: sim, repo: repo, pool: &ghclient.Pool{RootCAs: sim.RootCAs(), DialContext: sim.DialContext}, refusesRunDetails: opts.Answer == ghsim.AnswerGHES320}
	f.credsDB = &kargocreds.FakeDB{GetFn: func(_ context.Context, ns string, typ kargocreds.Type, repoURL string) (*kargocreds.Credentials, error) {
		if ns == "kargo-demo" && typ == kargocreds.TypeGit && (repoURL == "https://github.com/example/test" || repoURL == sim.RepoURL("example", "test")) {
			return &kargocreds.Credentials{Username: "kargo", Password: token}, nil
		}
		return nil, nil
	}}
	raw, err := os.ReadFile(stageFile)
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.ReplaceAll(string(raw), "GHES_REPO_URL", sim.RepoURL("example", "test")))
	var stage kargoapi.Stage
	if err := yaml.UnmarshalStrict(raw, &stage); err != nil {
		t.Fatal(err)
	}
	steps := stage.Spec.PromotionTemplate.Spec.Steps
	for i := range steps {
		steps[i].As = steps[i].GetAlias(i) // as Kargo does when it builds the Promotion
	}
	promo := &kargoapi.Promotion{Spec: kargoapi.PromotionSpec{Steps: steps}}
	f.steps, f.vars = promotion.NewSteps(promo), stage.Spec.PromotionTemplate.Spec.Vars
	return f
}

// controller is one controller process: a registry holding the steps,
// served by a fresh Runner.
func (f *engineFixture) controller() *promotion.LocalOrchestrator {
	registry := promotion.MustNewStepRunnerRegistry()
	r := &step.Runner{Clients: f.pool, Dispatcher: &dispatch.Dispatcher{Settle: time.Second}, Checker: &wait.Checker{}}
	Register(registry, r)
	kargoClient := fake.NewClientBuilder().Build()
	return promotion.NewLocalOrchestrator(registry, kargoClient, kargoClient, f.credsDB, nil, promotion.DefaultExprDataCacheFn)
}

// reconcile is one reconcile of the promotion: one engine call, timed, with
// the GitHub requests it made.
func (f *engineFixture) reconcile(t *testing.T, c *promotion.LocalOrchestrator, promoCtx promotion.Context) (promotion.Result, error) {
	t.Helper()
	promoCtx.WorkDir = t.TempDir()
	before := f.sim.Stats()
	start := time.Now()
	res, err := c.ExecuteSteps(context.Background(), promoCtx, f.steps)
	took := time.Since(start)
	after := f.sim.Stats()
	call := engineCall{from: int(promoCtx.StartFromStep), to: int(res.CurrentStep), status: res.Status, requests: after.Requests - before.Requests, byRoute: map[string]int{}}
	for route, n := range after.ByRoute {
		if d := n - before.ByRoute[route]; d != 0 {
			call.byRoute[route] = d
		}
	}
	f.mu.Lock()
	f.callTimes = append(f.callTimes, took)
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	return res, err
}

// checkOneRoundTripPerStep fails the test unless every engine call so far
// made at most one GitHub request per step it ran, plus the two refused
// dispatches on a host that refuses version 2026-03-10 and
// return_run_details. Valid only while one
// controller at a time calls, and without 5xx answers to reads (the client
// retries those within the call's timeout).
func (f *engineFixture) checkOneRoundTripPerStep(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.calls {
		allowed, dispatches := c.to-c.from+1, 1
		if f.refusesRunDetails {
			dispatches = 3
			if c.byRoute["dispatch"] > 1 {
				allowed += c.byRoute["dispatch"] - 1
			}
		}
		if c.requests > allowed || c.byRoute["dispatch"] > dispatches {
			t.Errorf("engine call %d (steps %d to %d, %s) made %d GitHub requests %v; at most %d allowed", i+1, c.from, c.to, c.status, c.requests, c.byRoute, allowed)
		}
	}
}

// next is the promotion context the controller saves after a reconcile:
// resumed from the current step, the state through JSON.
func next(t *testing.T, promoCtx promotion.Context, res promotion.Result) promotion.Context {
	promoCtx.StartFromStep = res.CurrentStep
	promoCtx.StepExecutionMetadata = res.StepExecutionMetadata
	promoCtx.State = roundTrip(t, res.State)
	return promoCtx
}

// promote reconciles until the promotion ends, the way the controller
// does: Running results are saved and resumed. Kargo waits at least 10 s
// between reconciles; the test waits at most 100 ms.
func (f *engineFixture) promote(t *testing.T, c *promotion.LocalOrchestrator, promoCtx promotion.Context) (promotion.Result, int) {
	t.Helper()
	running := 0
	for i := 0; i < 300; i++ {
		res, err := f.reconcile(t, c, promoCtx)
		if res.Status != kargoapi.PromotionPhaseRunning {
			return res, running
		}
		if err != nil {
			t.Logf("retrying after: %v", err)
		}
		running++
		promoCtx = next(t, promoCtx, res)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the promotion never finished")
	return promotion.Result{}, running
}

// report logs the engine calls' wall time.
func (f *engineFixture) report(t *testing.T, scenario string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := append([]time.Duration(nil), f.callTimes...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if len(d) == 0 {
		return
	}
	q := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))].Round(time.Millisecond) }
	t.Logf("engine call wall time, %s: %d calls, p50 %s, p99 %s, max %s", scenario, len(d), q(0.5), q(0.99), d[len(d)-1].Round(time.Millisecond))
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

func promoCtx(f *engineFixture, name string) promotion.Context {
	return promotion.Context{Project: "kargo-demo", Stage: "uat", Promotion: name, Vars: f.vars}
}

func TestKargoEngineDispatchesThenWaits(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{QueuedFor: 300 * time.Millisecond, RunFor: 300 * time.Millisecond}, "testdata/stage.yaml", ghsim.Workflow{})
	c := f.controller()
	res, running := f.promote(t, c, promoCtx(f, "uat.01jxyz.abcdef0"))
	if res.Status != kargoapi.PromotionPhaseSucceeded {
		t.Fatalf("promotion %s: %s", res.Status, res.Message)
	}
	if running == 0 {
		t.Fatal("the steps never reported Running")
	}
	runs := f.sim.Runs(f.repo)
	if len(runs) != 1 {
		t.Fatalf("%d runs dispatched, want 1", len(runs))
	}
	in := runs[0].Inputs
	if in["greeting"] != "hola" || in["environment"] != "uat" || in["promotion_id"] != "uat.01jxyz.abcdef0" || in["deploy_version"] != "1.10" {
		t.Fatalf("inputs as GitHub received them: %v", in)
	}
	// The state went through JSON between reconciles, so the number comes
	// back as float64, as it does in a controller.
	out, _ := roundTrip(t, res.State)["dispatch-deployment"].(map[string]any)
	if id, ok := out["runID"].(float64); !ok || int64(id) != runs[0].ID {
		t.Fatalf("dispatch output %#v, want runID %d", out, runs[0].ID)
	}
	for _, m := range res.StepExecutionMetadata {
		if m.Status != kargoapi.PromotionStepStatusSucceeded {
			t.Fatalf("step %s: %s %s", m.Alias, m.Status, m.Message)
		}
	}
	// A controller restart on another pod starts over from step 0 with the
	// saved state: the dispatch step must not dispatch again.
	again, _ := f.promote(t, f.controller(), promotion.Context{Project: "kargo-demo", Stage: "uat", Promotion: "uat.01jxyz.abcdef0", Vars: f.vars, State: roundTrip(t, res.State)})
	if again.Status != kargoapi.PromotionPhaseSucceeded || len(f.sim.Runs(f.repo)) != 1 {
		t.Fatalf("after restart: %s %s, %d runs", again.Status, again.Message, len(f.sim.Runs(f.repo)))
	}
	f.checkOneRoundTripPerStep(t)
	f.report(t, "run details")
}

func TestKargoEngineFailsOnUnexpectedConclusionAndSaysWhy(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{QueuedFor: 300 * time.Millisecond, RunFor: 300 * time.Millisecond}, "testdata/stage.yaml",
		ghsim.Workflow{Conclusion: "failure", Jobs: []ghsim.Job{{Name: "deploy (prod)", Steps: []string{"Checkout", "kubectl apply"}, FailAt: 2}}})
	res, _ := f.promote(t, f.controller(), promoCtx(f, "uat.02"))
	if res.Status != kargoapi.PromotionPhaseFailed {
		t.Fatalf("promotion %s: %s", res.Status, res.Message)
	}
	last := res.StepExecutionMetadata[len(res.StepExecutionMetadata)-1]
	if last.Status != kargoapi.PromotionStepStatusFailed || !strings.Contains(last.Message, `finished "failure" (expected "success"): job "deploy (prod)" failed at step 2 "kubectl apply": https://github.com/example/test/actions/runs/`) {
		t.Fatalf("wait step: %s %q", last.Status, last.Message)
	}
}

func TestKargoEngineReportsMissingCredentials(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{}, "testdata/stage.yaml", ghsim.Workflow{})
	res, _ := f.promote(t, f.controller(), promotion.Context{Project: "other-project", Stage: "uat", Promotion: "uat.03", Vars: f.vars})
	first := res.StepExecutionMetadata[0]
	if res.Status != kargoapi.PromotionPhaseErrored || first.Status != kargoapi.PromotionStepStatusErrored ||
		!strings.Contains(first.Message, "no Git credentials for https://github.com/example/test in project other-project") ||
		!strings.Contains(first.Message, "username + password") {
		t.Fatalf("%s: step %s %q", res.Status, first.Status, first.Message)
	}
	if f.sim.Stats().Requests != 0 {
		t.Fatal("requests sent without credentials")
	}
}

// On a host that does not name runs, with a lost dispatch answer and rate
// limits on the listings, every engine call still makes at most one GitHub
// request per step it runs (two POSTs: an Enterprise Server is asked under
// 2022-11-28 with return_run_details first, which GHES 3.20 refuses):
// waiting for the run or for a rate limit is Running, not requests in a
// loop. The promotion gets its one run (by its correlation key: without
// one, a lost answer is refused). The calls' wall times are logged.
func TestKargoEngineCallsStayShortInFallbackMode(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{Answer: ghsim.AnswerGHES320, RunDelay: 500 * time.Millisecond, QueuedFor: 200 * time.Millisecond, RunFor: 200 * time.Millisecond},
		"testdata/stage-correlated.yaml", ghsim.Workflow{RunName: "Deploy ${{ inputs.environment }} ${{ inputs.dispatch_key }}"})
	// The second POST: the first is refused for return_run_details.
	f.sim.InjectFault(&ghsim.Fault{Route: "dispatch", Status: 502, AfterAction: true, Skip: 1, Times: 1})
	f.sim.InjectFault(&ghsim.Fault{Route: "list-runs", SecondaryRateLimit: time.Second, Times: 2})
	res, _ := f.promote(t, f.controller(), promoCtx(f, "uat.fallback"))
	if res.Status != kargoapi.PromotionPhaseSucceeded || len(f.sim.Runs(f.repo)) != 1 {
		t.Fatalf("promotion %s: %s; %d runs", res.Status, res.Message, len(f.sim.Runs(f.repo)))
	}
	// The scenario happened: the refused POST and the one whose answer was
	// lost, never a third; both rate-limited listings, then the one that
	// found the run.
	if st := f.sim.Stats(); st.ByRoute["dispatch"] != 2 || st.ByRoute["list-runs"] < 3 {
		t.Fatalf("requests by route %v: want 2 dispatch POSTs and at least 3 listings", st.ByRoute)
	}
	f.checkOneRoundTripPerStep(t)
	f.report(t, "GHES 3.20, lost answer, rate-limited listings")
}

// The controller is killed after the dispatch left and before the
// promotion's state was saved: there is exactly one run, and the restarted
// controller never dispatches again. With correlationInput it reports the
// run the dead one created; without, it cannot tell that run from another
// dispatcher's, so the promotion fails naming it.
func TestKargoEngineKilledBetweenPostAndSave(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  ghsim.Options
		stage string
	}{
		{"run details", ghsim.Options{}, "testdata/stage.yaml"},
		{"GHES 3.20 by listing", ghsim.Options{Answer: ghsim.AnswerGHES320, RunDelay: 200 * time.Millisecond}, "testdata/stage.yaml"},
		{"GHES 3.20 with correlationInput", ghsim.Options{Answer: ghsim.AnswerGHES320, RunDelay: 200 * time.Millisecond}, "testdata/stage-correlated.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.QueuedFor, tc.opts.RunFor = 100*time.Millisecond, 100*time.Millisecond
			f := newEngineFixture(t, tc.opts, tc.stage, ghsim.Workflow{RunName: "Deploy ${{ inputs.environment }} ${{ inputs.dispatch_key }}"})
			dead := f.controller()
			pc := promoCtx(f, "uat.killed")
			res, _ := f.reconcile(t, dead, pc) // records the intent (and, with a key, looks for an earlier run)
			if st := f.sim.Stats(); res.Status != kargoapi.PromotionPhaseRunning || st.Dispatches != 0 || st.Requests > 1 {
				t.Fatalf("first reconcile: %s %s, %d requests", res.Status, res.Message, st.Requests)
			}
			pc = next(t, pc, res)
			// The dead controller works on its own copy of the state, which
			// is never saved.
			deadPC := pc
			deadPC.State = roundTrip(t, pc.State)
			if _, err := f.reconcile(t, dead, deadPC); err != nil { // the dispatch leaves; its result is never saved
				t.Logf("dead controller: %v", err)
			}
			if f.sim.Stats().Dispatches != 1 {
				t.Fatalf("%d dispatches before the kill", f.sim.Stats().Dispatches)
			}
			final, _ := f.promote(t, f.controller(), pc)
			runs := f.sim.Runs(f.repo)
			out, _ := roundTrip(t, final.State)["dispatch-deployment"].(map[string]any)
			id, _ := out["runID"].(float64)
			if len(runs) != 1 {
				t.Fatalf("after the restart: runs %+v, want exactly one", runs)
			}
			if tc.stage == "testdata/stage-correlated.yaml" {
				if final.Status != kargoapi.PromotionPhaseSucceeded || int64(id) != runs[0].ID {
					t.Fatalf("after the restart: %s %s; reported %v, want %d", final.Status, final.Message, out["runID"], runs[0].ID)
				}
				return
			}
			if final.Status == kargoapi.PromotionPhaseSucceeded || !strings.Contains(final.Message, fmt.Sprint(runs[0].ID)) {
				t.Fatalf("after the restart without a key: %s %s; want a refusal naming run %d", final.Status, final.Message, runs[0].ID)
			}
			f.checkOneRoundTripPerStep(t)
		})
	}
}

// GitHub fails every read for a while during the wait: the step stays
// Running (Kargo's error threshold is not consumed) and the promotion
// succeeds when the run does.
func TestKargoEngineRidesOutAnOutageDuringTheWait(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{QueuedFor: 500 * time.Millisecond, RunFor: 500 * time.Millisecond}, "testdata/stage.yaml", ghsim.Workflow{})
	c := f.controller()
	pc := promoCtx(f, "uat.outage")
	var res promotion.Result
	for i := 0; i < 50; i++ { // until the wait step runs
		res, _ = f.reconcile(t, c, pc)
		pc = next(t, pc, res)
		if res.CurrentStep == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res.CurrentStep != 1 || res.Status != kargoapi.PromotionPhaseRunning {
		t.Fatalf("the wait step never ran before the outage: step %d, %s %s", res.CurrentStep, res.Status, res.Message)
	}
	f.sim.InjectFault(&ghsim.Fault{Route: "get-run", Status: 503})
	outageEnds := time.Now().Add(3 * time.Second)
	for time.Now().Before(outageEnds) {
		res, err := f.reconcile(t, c, pc)
		if res.Status != kargoapi.PromotionPhaseRunning || err != nil {
			t.Fatalf("during the outage: %s %s, %v", res.Status, res.Message, err)
		}
		if m := res.StepExecutionMetadata[1]; m.ErrorCount != 0 || !strings.Contains(m.Message, "the run goes on") {
			t.Fatalf("wait step during the outage: %+v", m)
		}
		pc = next(t, pc, res)
		time.Sleep(100 * time.Millisecond)
	}
	f.sim.ClearFaults()
	final, _ := f.promote(t, c, pc)
	if final.Status != kargoapi.PromotionPhaseSucceeded {
		t.Fatalf("after the outage: %s %s", final.Status, final.Message)
	}
}

// Two controller shards promote to two Stages that dispatch the same
// workflow and ref at once, on a host that does not name runs: with
// correlationInput each promotion gets its own run.
func TestKargoEngineTwoShardsWithCorrelationInput(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{Answer: ghsim.AnswerGHES320, RunDelay: 300 * time.Millisecond, QueuedFor: 100 * time.Millisecond, RunFor: 100 * time.Millisecond},
		"testdata/stage-correlated.yaml", ghsim.Workflow{RunName: "Deploy ${{ inputs.environment }} ${{ inputs.dispatch_key }}"})
	const n = 4
	results := make([]promotion.Result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], _ = f.promote(t, f.controller(), promoCtx(f, fmt.Sprintf("uat.shard-%d", i)))
		}(i)
	}
	wg.Wait()
	byID := map[int64]map[string]any{}
	for _, r := range f.sim.Runs(f.repo) {
		byID[r.ID] = r.Inputs
	}
	seen := map[int64]bool{}
	for i, res := range results {
		out, _ := roundTrip(t, res.State)["dispatch-deployment"].(map[string]any)
		id, _ := out["runID"].(float64)
		if res.Status != kargoapi.PromotionPhaseSucceeded || seen[int64(id)] || byID[int64(id)]["promotion_id"] != fmt.Sprintf("uat.shard-%d", i) {
			t.Fatalf("promotion %d: %s %s, run %v (%v)", i, res.Status, res.Message, out["runID"], byID[int64(id)])
		}
		seen[int64(id)] = true
	}
	if len(byID) != n {
		t.Fatalf("%d runs for %d promotions", len(byID), n)
	}
	f.report(t, "two shards, correlationInput")
}

// A saved dispatch state that cannot be read (an older encoding, a hand
// edit) ends the promotion with a terminal error naming the runs page, and
// nothing is sent.
func TestKargoEngineCorruptedStateIsTerminalAndSendsNothing(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent}, "testdata/stage.yaml", ghsim.Workflow{})
	pc := promoCtx(f, "uat.corrupt")
	pc.State = promotion.State{"dispatch-deployment": map[string]any{"dispatch": map[string]any{"attempt": "abc", "maybeSent": true}}}
	res, _ := f.promote(t, f.controller(), pc)
	if res.Status == kargoapi.PromotionPhaseSucceeded || res.Status == kargoapi.PromotionPhaseRunning ||
		!strings.Contains(res.Message, "/example/test/actions/workflows/test.yaml") || !strings.Contains(res.Message, "not dispatching again") {
		t.Fatalf("promotion %s: %s", res.Status, res.Message)
	}
	if st := f.sim.Stats(); st.Requests != 0 {
		t.Fatalf("%d GitHub requests for a state that cannot be read", st.Requests)
	}
}

// A controller shutting down mid-reconcile: its context is cancelled while
// the dispatch step is listing runs. The step is Running with its state
// kept, and the next reconcile goes on to the one run.
func TestKargoEngineCancelledMidCallKeepsTheState(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var armed atomic.Bool
	f := newEngineFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 300 * time.Millisecond, QueuedFor: 100 * time.Millisecond, RunFor: 100 * time.Millisecond,
		Observe: func(e ghsim.Exchange) {
			if e.Route == "list-runs" && armed.CompareAndSwap(true, false) {
				cancel() // the controller stops while this listing is answered
			}
		}}, "testdata/stage.yaml", ghsim.Workflow{})
	c := f.controller()
	pc := promoCtx(f, "uat.cancelled")
	for i := 0; i < 2; i++ { // record the intent, send the dispatch
		res, _ := f.reconcile(t, c, pc)
		pc = next(t, pc, res)
	}
	before := pc.State["dispatch-deployment"].(map[string]any)["dispatch"].(map[string]any)
	armed.Store(true)
	wd := pc
	wd.WorkDir = t.TempDir()
	var res promotion.Result
	for i := 0; i < 20 && ctx.Err() == nil; i++ { // until a call is cut short
		res, _ = c.ExecuteSteps(ctx, wd, f.steps)
		wd = next(t, wd, res)
		time.Sleep(50 * time.Millisecond)
	}
	if ctx.Err() == nil {
		t.Fatal("no listing was cut short")
	}
	if res.Status != kargoapi.PromotionPhaseRunning {
		t.Fatalf("cancelled reconcile: %s %s, want Running", res.Status, res.Message)
	}
	pc = next(t, pc, res)
	after, _ := pc.State["dispatch-deployment"].(map[string]any)["dispatch"].(map[string]any)
	if after["attempt"] != before["attempt"] || after["phase"] != "sent" {
		t.Fatalf("state after the cancelled call %v, before %v", after, before)
	}
	final, _ := f.promote(t, c, pc)
	if final.Status != kargoapi.PromotionPhaseSucceeded || f.sim.Stats().Dispatches != 1 {
		t.Fatalf("after the cancellation: %s %s, %d dispatches", final.Status, final.Message, f.sim.Stats().Dispatches)
	}
}

// A dispatch answer slower than the engine call's 4 s bound is still read:
// one run, named by GitHub, not orphaned as a lost answer.
func TestKargoEngineReadsADispatchAnswerSlowerThanTheCallBound(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{RunDelay: 5 * time.Second, QueuedFor: 100 * time.Millisecond, RunFor: 100 * time.Millisecond}, "testdata/stage.yaml", ghsim.Workflow{})
	res, _ := f.promote(t, f.controller(), promoCtx(f, "uat.slow-answer"))
	out, _ := roundTrip(t, res.State)["dispatch-deployment"].(map[string]any)
	if res.Status != kargoapi.PromotionPhaseSucceeded || len(f.sim.Runs(f.repo)) != 1 || out["attribution"] != "run-details" {
		t.Fatalf("promotion %s: %s; %d runs; output %v", res.Status, res.Message, len(f.sim.Runs(f.repo)), out)
	}
}
