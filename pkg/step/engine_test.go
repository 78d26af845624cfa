package step

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// promotion drives a step the way Kargo's promotion reconciler does: the
// step's output is saved (through JSON, as in the Promotion's status) after
// every call, Running is called again, and a restart is a new Runner (a new
// process) that reads the saved state. RetryAfter is honoured only as
// "called again later": the test does not sleep Kargo's 10 s floor.
type promotion struct {
	t       *testing.T
	name    string
	alias   string
	saved   map[string]any // the Promotion's state, as saved
	calls   int
	maxReqs int // the most GitHub requests one call made
	sim     *ghsim.Server
	ctx     context.Context // nil: context.Background()
}

func (p *promotion) context(cfg map[string]any) *Context {
	return &Context{Project: "kargo-demo", Promotion: p.name, Alias: p.alias, Config: cfg, SharedState: p.load(),
		Credentials: kargoCreds, SavesState: true}
}

// load is the state as the next call sees it: reloaded from JSON, so
// numbers are float64 as after a controller restart.
func (p *promotion) load() map[string]any {
	b, err := json.Marshal(p.saved)
	if err != nil {
		p.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		p.t.Fatal(err)
	}
	return m
}

// call runs the step once and saves its output, unless the controller
// "dies" before saving (save false).
func (p *promotion) call(r *Runner, run func(*Runner) func(context.Context, *Context) (Result, error), cfg map[string]any, save bool) (Result, error) {
	p.t.Helper()
	before := p.sim.Stats().Requests
	ctx := p.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := run(r)(ctx, p.context(cfg))
	if n := p.sim.Stats().Requests - before; n > p.maxReqs {
		p.maxReqs = n
	}
	p.calls++
	if save {
		if p.saved == nil {
			p.saved = map[string]any{}
		}
		p.saved[p.alias] = res.Output // Kargo saves the output on every call, errors included
	}
	return res, err
}

// until calls the step until it stops Running (or 200 calls).
func (p *promotion) until(r *Runner, run func(*Runner) func(context.Context, *Context) (Result, error), cfg map[string]any) (Result, error) {
	p.t.Helper()
	for i := 0; i < 200; i++ {
		res, err := p.call(r, run, cfg, true)
		if err != nil || res.Status != StatusRunning {
			return res, err
		}
		next := kargoDefaultRequeue // Kargo's interval for a Running step without RetryAfter
		if res.RetryAfter != nil {
			next = *res.RetryAfter
		}
		pause(r, next)
	}
	p.t.Fatal("the step never stopped Running")
	return Result{}, nil
}

// kargoDefaultRequeue stands for the interval at which Kargo calls a
// Running step that named no RetryAfter.
const kargoDefaultRequeue = 10 * time.Second

func dispatchStep(r *Runner) func(context.Context, *Context) (Result, error) { return r.Dispatch }

// pause lets time pass between two calls: on the Runner's fake clock when
// it has one (shared with the simulator), else for real, shortened.
func pause(r *Runner, d time.Duration) {
	if f, ok := r.Dispatcher.Clock.(*clock.Fake); ok {
		f.Advance(d)
		return
	}
	time.Sleep(min(d, 250*time.Millisecond))
}

// engineSim starts a simulator on a fake clock that every Runner it makes
// shares, so that a promotion's minutes take milliseconds.
func engineSim(t *testing.T, opts ghsim.Options) (*ghsim.Server, func() *Runner) {
	t.Helper()
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	if opts.Clock == nil {
		opts.Clock = fake
	}
	clk := opts.Clock
	sim, pool := simtest.Start(t, opts)
	repo := sim.AddRepo("example", "test")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "test.yaml", Inputs: []string{"greeting", "dispatch_key"}, RunName: "Test ${{ inputs.dispatch_key }}"})
	sim.AddToken(tok, "octocat", false)
	// Each Runner is a controller process: its own dispatch memory.
	return sim, func() *Runner {
		return &Runner{Clients: pool, Dispatcher: &dispatch.Dispatcher{Clock: clk}, Checker: &wait.Checker{}, Clock: clk}
	}
}

var dispatchCfg = map[string]any{"repoURL": "https://github.com/example/test", "workflowFile": "test.yaml", "ref": "main", "inputs": map[string]any{"greeting": "hola"}, "timeout": 20}

func withKey(cfg map[string]any) map[string]any {
	out := map[string]any{"correlationInput": "dispatch_key"}
	for k, v := range cfg {
		out[k] = v
	}
	return out
}

// Every call returns after at most one GitHub round trip (three when an old
// server refuses version 2026-03-10 and then return_run_details, each 400
// sent nothing), and the intent is saved before the dispatch leaves.
func TestDispatchStepInKargoTakesOneRoundTripPerCall(t *testing.T) {
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerRunDetails, ghsim.AnswerNoContent, ghsim.AnswerGHES320} {
		t.Run(fmt.Sprint("answer ", answer), func(t *testing.T) {
			sim, newRunner := engineSim(t, ghsim.Options{Answer: answer, RunDelay: 200 * time.Millisecond})
			p := &promotion{t: t, name: "promo-1", alias: "dispatch", sim: sim}
			r := newRunner()
			first, err := p.call(r, dispatchStep, dispatchCfg, true)
			if err != nil || first.Status != StatusRunning || sim.Stats().Requests != 0 {
				t.Fatalf("the first call must only record the intent: %+v, %v, %d requests", first, err, sim.Stats().Requests)
			}
			res, err := p.until(r, dispatchStep, dispatchCfg)
			if err != nil || res.Status != StatusSucceeded {
				t.Fatalf("%+v, %v", res, err)
			}
			if _, ok := res.Output["runID"].(int64); !ok {
				t.Fatalf("runID must be an int64: %#v", res.Output)
			}
			limit := 1
			if answer == ghsim.AnswerGHES320 {
				limit = 3
			}
			if p.maxReqs > limit {
				t.Fatalf("one call made %d requests", p.maxReqs)
			}
			if st := sim.Stats(); st.Dispatches != 1 {
				t.Fatalf("%d dispatches", st.Dispatches)
			}
		})
	}
}

// A controller killed after the dispatch left and before its result was
// saved: the restarted controller never sends it again. With a key it
// reports the run the dead one created; without one it cannot tell that
// run from another dispatcher's, so it refuses, naming it.
func TestDispatchStepKilledBetweenPostAndSave(t *testing.T) {
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerRunDetails, ghsim.AnswerNoContent} {
		for _, cfg := range []map[string]any{dispatchCfg, withKey(dispatchCfg)} {
			keyed := cfg["correlationInput"] != nil
			t.Run(fmt.Sprintf("answer %d key %v", answer, keyed), func(t *testing.T) {
				sim, newRunner := engineSim(t, ghsim.Options{Answer: answer, RunDelay: 100 * time.Millisecond})
				p := &promotion{t: t, name: "promo-kill", alias: "dispatch", sim: sim}
				dead := newRunner()
				if res, err := p.call(dead, dispatchStep, cfg, true); err != nil || res.Status != StatusRunning {
					t.Fatalf("%+v, %v", res, err)
				}
				// The dispatch leaves; the controller dies before saving.
				if _, err := p.call(dead, dispatchStep, cfg, false); err != nil {
					t.Fatal(err)
				}
				res, err := p.until(newRunner(), dispatchStep, cfg)
				runs := sim.Runs(sim.Repo("example", "test"))
				if len(runs) != 1 {
					t.Fatalf("runs %+v: want exactly one", runs)
				}
				if keyed {
					if err != nil || res.Status != StatusSucceeded || runs[0].ID != res.Output["runID"] {
						t.Fatalf("%+v, %v: want run %d reported", res, err, runs[0].ID)
					}
					return
				}
				if res.Status != StatusFailed || !failure.IsFinal(err) || !strings.Contains(res.Message, fmt.Sprint(runs[0].ID)) || !strings.Contains(res.Message, "restart") {
					t.Fatalf("%+v, %v: want a refusal naming run %d", res, err, runs[0].ID)
				}
			})
		}
	}
}

// A saved state that cannot be read is a terminal error that names the
// runs page, and nothing is sent.
func TestDispatchStepWithCorruptedStateSendsNothing(t *testing.T) {
	for name, saved := range map[string]any{
		"an older encoding": map[string]any{"attempt": "abc", "maybeSent": true},
		"a hand edit":       map[string]any{"version": 1, "phase": "sent"},
		"not a state":       "sent",
	} {
		t.Run(name, func(t *testing.T) {
			sim, newRunner := engineSim(t, ghsim.Options{Answer: ghsim.AnswerNoContent})
			p := &promotion{t: t, name: "promo-corrupt", alias: "dispatch", sim: sim, saved: map[string]any{"dispatch": map[string]any{"dispatch": saved}}}
			res, err := p.until(newRunner(), dispatchStep, dispatchCfg)
			if res.Status != StatusFailed || !failure.IsFinal(err) || !strings.Contains(res.Message, "https://github.com/example/test/actions/workflows/test.yaml") ||
				!strings.Contains(res.Message, "not dispatching again") {
				t.Fatalf("%+v, %v", res, err)
			}
			if st := sim.Stats(); st.Requests != 0 {
				t.Fatalf("%d requests for a state that cannot be read", st.Requests)
			}
		})
	}
}

// A controller shutting down mid-call: the step is Running with its state
// kept, never terminal, and the next call goes on.
func TestDispatchStepCancelledMidCallKeepsItsState(t *testing.T) {
	sim, newRunner := engineSim(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: time.Second})
	r := newRunner()
	p := &promotion{t: t, name: "promo-cancel", alias: "dispatch", sim: sim}
	for i := 0; i < 3; i++ { // record, send, first look
		if _, err := p.call(r, dispatchStep, dispatchCfg, true); err != nil {
			t.Fatal(err)
		}
	}
	before := p.saved["dispatch"]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.ctx = ctx
	res, err := p.call(r, dispatchStep, dispatchCfg, true)
	if err != nil || res.Status != StatusRunning || !strings.Contains(res.Message, "state kept") {
		t.Fatalf("cancelled: %+v, %v", res, err)
	}
	if got, want := res.Output["dispatch"].(map[string]any)["attempt"], before.(map[string]any)["dispatch"].(map[string]any)["attempt"]; got != want {
		t.Fatalf("the state changed: %v, want %v", got, want)
	}
	p.ctx = nil
	res, err = p.until(r, dispatchStep, dispatchCfg)
	if err != nil || res.Status != StatusSucceeded || sim.Stats().Dispatches != 1 {
		t.Fatalf("after the cancellation: %+v, %v", res, err)
	}
}

// A dispatch answer slower than a step call's bound is still read: one
// run, named by GitHub, never orphaned as a lost answer.
func TestDispatchStepReadsASlowAnswer(t *testing.T) {
	sim, newRunner := engineSim(t, ghsim.Options{Clock: clock.System{}, Answer: ghsim.AnswerRunDetails, RunDelay: 1500 * time.Millisecond})
	r := newRunner()
	r.CallTimeout = 500 * time.Millisecond
	p := &promotion{t: t, name: "promo-slow", alias: "dispatch", sim: sim}
	res, err := p.until(r, dispatchStep, dispatchCfg)
	if err != nil || res.Status != StatusSucceeded || res.Output["attribution"] != "run-details" || sim.Stats().Dispatches != 1 {
		t.Fatalf("%+v, %v, %+v", res, err, sim.Stats())
	}
}

// A controller that dies after saving its intent and before sending: the
// restarted one cannot know whether the dispatch left, so it only looks,
// and says where to check when nothing appears.
func TestDispatchStepKilledBeforeSendingNeverGuesses(t *testing.T) {
	sim, newRunner := engineSim(t, ghsim.Options{Answer: ghsim.AnswerNoContent})
	p := &promotion{t: t, name: "promo-early", alias: "dispatch", sim: sim}
	cfg := map[string]any{"repoURL": "https://github.com/example/test", "workflowFile": "test.yaml", "ref": "main", "timeout": 2}
	if _, err := p.call(newRunner(), dispatchStep, cfg, true); err != nil {
		t.Fatal(err)
	}
	res, err := p.until(newRunner(), dispatchStep, cfg)
	if res.Status != StatusFailed || !failure.IsFinal(err) || !strings.Contains(res.Message, "before dispatching again") || !strings.Contains(res.Message, "/actions/workflows/test.yaml") {
		t.Fatalf("%+v, %v", res, err)
	}
	if st := sim.Stats(); st.ByRoute["dispatch"] != 0 {
		t.Fatalf("%d POSTs from a restarted controller", st.ByRoute["dispatch"])
	}
}

// Two controller shards dispatch the same workflow and ref at once, on a
// host that does not name runs: with correlationInput each promotion gets
// its own run.
func TestTwoShardsWithCorrelationInputEachGetTheirOwnRun(t *testing.T) {
	sim, newRunner := engineSim(t, ghsim.Options{Answer: ghsim.AnswerGHES320, RunDelay: 300 * time.Millisecond})
	cfg := withKey(dispatchCfg)
	const n = 6
	results := make([]Result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := &promotion{t: t, name: fmt.Sprint("promo-", i), alias: "dispatch", sim: sim}
			results[i], _ = p.until(newRunner(), dispatchStep, cfg) // a shard each
		}(i)
	}
	wg.Wait()
	seen := map[any]bool{}
	for i, res := range results {
		if res.Status != StatusSucceeded || seen[res.Output["runID"]] {
			t.Fatalf("promotion %d: %+v", i, res)
		}
		seen[res.Output["runID"]] = true
		for _, run := range sim.Runs(sim.Repo("example", "test")) {
			if run.ID == res.Output["runID"] && run.Inputs["dispatch_key"] != res.Output["correlationKey"] {
				t.Fatalf("promotion %d got the run of key %v", i, run.Inputs["dispatch_key"])
			}
		}
	}
}

// Rate limits while looking for the run become RetryAfter, not sleeps.
func TestDispatchStepRateLimitIsRetryAfter(t *testing.T) {
	sim, newRunner := engineSim(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 100 * time.Millisecond})
	sim.InjectFault(&ghsim.Fault{Route: "dispatch", SecondaryRateLimit: 3 * time.Second, Times: 1})
	p := &promotion{t: t, name: "promo-rl", alias: "dispatch", sim: sim}
	r := newRunner()
	if _, err := p.call(r, dispatchStep, dispatchCfg, true); err != nil {
		t.Fatal(err)
	}
	res, err := p.call(r, dispatchStep, dispatchCfg, true)
	if err != nil || res.Status != StatusRunning || res.RetryAfter == nil || *res.RetryAfter < 2900*time.Millisecond || !strings.Contains(res.Message, "nothing was dispatched") {
		t.Fatalf("%+v, %v", res, err)
	}
}
