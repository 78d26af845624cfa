package step

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// kargoDefaultInterval stands for Kargo's requeue interval when a Running
// step names no RetryAfter.
const kargoDefaultInterval = 10 * time.Second

// waitEnv is a simulator, and a Runner for the wait step, on one fake
// clock: a run that takes minutes and a 15-minute outage budget play out
// in milliseconds.
type waitEnv struct {
	t     *testing.T
	sim   *ghsim.Server
	repo  *ghsim.Repo
	r     *Runner
	clock *clock.Fake
}

func newWaitEnv(t *testing.T, opts ghsim.Options, wf ghsim.Workflow) *waitEnv {
	t.Helper()
	// At the wall clock's time: the client computes rate-limit waits
	// against the wall clock.
	fake := clock.NewFake(time.Now())
	opts.Clock = fake
	sim, pool := simtest.Start(t, opts)
	repo := sim.AddRepo("example", "test")
	wf.File = "test.yaml"
	sim.AddWorkflow(repo, wf)
	sim.AddToken(tok, "octocat", false)
	r := &Runner{Clients: pool, Checker: &wait.Checker{Clock: fake}, Clock: fake}
	return &waitEnv{t: t, sim: sim, repo: repo, r: r, clock: fake}
}

// run creates a run of the workflow, visible at once, and returns the
// wait step's config for it.
func (e *waitEnv) run(cfg map[string]any) map[string]any {
	id := e.sim.CreateRun(e.repo, "test.yaml", "main", "octocat", nil, 0)
	out := map[string]any{"repoURL": "https://github.com/example/test", "runID": id}
	for k, v := range cfg {
		out[k] = v
	}
	return out
}

// waitPromotion calls the wait step as Kargo does: the output is saved
// through JSON after every call, and the next call comes RetryAfter later
// on the clock.
type waitPromotion struct {
	e        *waitEnv
	cfg      map[string]any
	saved    map[string]any
	messages []string
}

func (e *waitEnv) promotion(cfg map[string]any) *waitPromotion {
	return &waitPromotion{e: e, cfg: cfg}
}

func (p *waitPromotion) call(ctx context.Context) (Result, error) {
	p.e.t.Helper()
	b, err := json.Marshal(map[string]any{"wait": p.saved})
	if err != nil {
		p.e.t.Fatal(err)
	}
	var state map[string]any
	_ = json.Unmarshal(b, &state)
	res, err := p.e.r.Wait(ctx, &Context{Project: "kargo-demo", Promotion: "promo", Alias: "wait", Config: p.cfg, SharedState: state, Credentials: kargoCreds, SavesState: true})
	p.saved = res.Output
	p.messages = append(p.messages, res.Message)
	return res, err
}

// until calls the step until it stops Running, moving the clock by each
// RetryAfter (Kargo's default interval when there is none).
func (p *waitPromotion) until() (Result, error) {
	p.e.t.Helper()
	for range 500 {
		res, err := p.call(context.Background())
		if err != nil || res.Status != StatusRunning {
			return res, err
		}
		d := kargoDefaultInterval
		if res.RetryAfter != nil {
			d = *res.RetryAfter
		}
		p.e.clock.Advance(d)
	}
	p.e.t.Fatal("the step never stopped Running")
	return Result{}, nil
}

func (p *waitPromotion) said(s string) bool {
	for _, m := range p.messages {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// A run that takes five minutes: Running (queued, then in progress) at the
// configured interval, then Succeeded with its conclusion; checked again
// with another expectation, Failed for good.
func TestWaitStep(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{QueuedFor: time.Minute, RunFor: 4 * time.Minute}, ghsim.Workflow{})
	cfg := e.run(map[string]any{"pollInterval": "30s", "expectedConclusion": "success"})
	began := e.clock.Now()
	p := e.promotion(cfg)
	first, err := p.call(context.Background())
	if err != nil || first.Status != StatusRunning || first.RetryAfter == nil || *first.RetryAfter != 30*time.Second || !strings.Contains(first.Message, "queued") {
		t.Fatalf("%+v, %v", first, err)
	}
	res, err := p.until()
	if err != nil || res.Status != StatusSucceeded || res.Output["conclusion"] != "success" || !p.said("in_progress") {
		t.Fatalf("%+v, %v; said %q", res, err, p.messages)
	}
	if took := e.clock.Now().Sub(began); took < 5*time.Minute || took > 5*time.Minute+30*time.Second {
		t.Fatalf("succeeded %s after the first check, want within one interval of 5m", took)
	}
	cfg["expectedConclusion"] = "failure"
	res, err = e.promotion(cfg).call(context.Background())
	if res.Status != StatusFailed || !failure.IsFinal(err) || !strings.Contains(res.Message, `expected "failure"`) {
		t.Fatalf("%+v, %v", res, err)
	}
}

// A wrong run ID: the 404 is retried for the grace (GitHub's read lag),
// never saying the run goes on, then fails for good naming the run and the
// repository.
func TestWaitStepWrongRunIDFailsAfterTheGrace(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{}, ghsim.Workflow{})
	p := e.promotion(map[string]any{"repoURL": "https://github.com/example/test", "runID": 4242})
	began := e.clock.Now()
	res, err := p.until()
	if res.Status != StatusErrored || !failure.IsFinal(err) || !strings.Contains(err.Error(), "run 4242 does not exist in https://github.com/example/test") {
		t.Fatalf("%+v, %v", res, err)
	}
	// GitHub's read lag is a second or two: a wrong ID is told within 15 s.
	if took := e.clock.Now().Sub(began); took < DefaultNotFoundGrace || took > DefaultNotFoundGrace+notFoundPause || took > 15*time.Second {
		t.Fatalf("final %s after the first check, want the %s grace, and no more than 15s", took, DefaultNotFoundGrace)
	}
	if !p.said("run 4242 is not readable yet") || p.said("goes on") {
		t.Fatalf("messages %q", p.messages)
	}
}

// A run GitHub named but cannot read yet (replica lag): the wait retries
// its 404 and succeeds.
func TestWaitStepToleratesALaggingRead(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{ReadLag: 5 * time.Second}, ghsim.Workflow{})
	p := e.promotion(e.run(nil))
	res, err := p.until()
	if err != nil || res.Status != StatusSucceeded || !p.said("not readable yet") {
		t.Fatalf("%+v, %v; said %q", res, err, p.messages)
	}
}

// GitHub failing during the wait: 502s and dropped connections (more than
// the transport retries) and rate limits keep the step Running, backed
// off, and it succeeds when the run does; an outage that outlasts the
// 15-minute budget ends it.
func TestWaitStepRidesOutAnOutage(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{QueuedFor: time.Minute, RunFor: time.Minute}, ghsim.Workflow{})
	cfg := e.run(map[string]any{"expectedConclusion": "success"})
	p := e.promotion(cfg)
	if res, err := p.call(context.Background()); err != nil || res.Status != StatusRunning {
		t.Fatalf("%+v, %v", res, err)
	}
	rateLimit := &ghsim.Fault{Route: "get-run", SecondaryRateLimit: 5 * time.Second, Undocumented: true, Status: 429}
	for _, fault := range []*ghsim.Fault{{Route: "get-run", Status: 502}, {Route: "get-run", Drop: true}, rateLimit} {
		e.sim.InjectFault(fault)
		res, err := p.call(context.Background())
		if err != nil || res.Status != StatusRunning || res.RetryAfter == nil || !strings.Contains(res.Message, "the run goes on") {
			t.Fatalf("during the outage (%+v): %+v, %v", fault, res, err)
		}
		e.clock.Advance(*res.RetryAfter)
		e.sim.ClearFaults()
	}
	if st := decodeWaitState(p.saved["wait"]); st.failures != 3 {
		t.Fatalf("state after three failed checks: %+v", st)
	}
	res, err := p.until()
	if err != nil || res.Status != StatusSucceeded || res.Output["conclusion"] != "success" {
		t.Fatalf("after the outage: %+v, %v", res, err)
	}

	// Past the default budget (rate limits: the transport hands them back
	// at once, so the quarter hour passes without wall-clock retries).
	e.sim.InjectFault(rateLimit)
	q := e.promotion(cfg)
	began := e.clock.Now()
	res, err = q.until()
	if res.Status != StatusErrored || !failure.IsFinal(err) || !strings.Contains(res.Message, "outage budget 15m0s") || !strings.Contains(res.Message, "has not been read yet") {
		t.Fatalf("past the budget: %+v, %v", res, err)
	}
	if took := e.clock.Now().Sub(began); took <= DefaultOutageBudget || took > DefaultOutageBudget+maxOutageBackoff {
		t.Fatalf("gave up %s into the outage, want just past %s", took, DefaultOutageBudget)
	}
	if q.said("goes on") {
		t.Fatalf("said the run goes on before it was read: %q", q.messages)
	}
}

// A failed run names the failing job, its failing step and the job's URL,
// and blames no job that succeeded; a run waiting for approval says which
// environment and who may approve.
func TestWaitStepSaysWhy(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{QueuedFor: 30 * time.Second, RunFor: time.Minute}, ghsim.Workflow{Conclusion: "failure",
		Jobs: []ghsim.Job{
			{Name: "build", Steps: []string{"Checkout", "Build"}},
			{Name: "deploy (prod)", Steps: []string{"Set up job", "Checkout", "kubectl apply"}, FailAt: 3},
			{Name: "notify", Steps: []string{"Send"}, Cancelled: true},
		},
		Environment: &ghsim.Environment{Name: "prod", Reviewers: []string{"alice", "bob"}, ApprovalFor: 2 * time.Minute}})
	cfg := e.run(map[string]any{"expectedConclusion": "success", "pollInterval": "20s"})
	p := e.promotion(cfg)
	res, err := p.until()
	if !p.said("waiting for approval of environment prod (reviewers: alice, bob)") {
		t.Errorf("no progress message named the environment awaiting approval: %q", p.messages)
	}
	if n := e.sim.Stats().ByRoute["pending-deployments"]; n != 1 {
		t.Errorf("%d pending-deployment reads, want one per change of status", n)
	}
	id := cfg["runID"]
	want := fmt.Sprintf(`run %v finished "failure" (expected "success"): job "deploy (prod)" failed at step 3 "kubectl apply": https://github.com/example/test/actions/runs/%v/job/`, id, id)
	if res.Status != StatusFailed || !failure.IsFinal(err) || !strings.HasPrefix(res.Message, want) || strings.Contains(res.Message, `"build"`) {
		t.Fatalf("%+v, %v\nwant a message starting %q", res, err, want)
	}
	jobs, _ := res.Output["failedJobs"].([]any)
	if len(jobs) != 2 || jobs[0].(map[string]any)["step"] != "kubectl apply" || res.Output["runAttempt"] != int64(1) || res.Output["conclusion"] != "failure" {
		t.Fatalf("output %#v", res.Output)
	}
	// The diagnosis is best-effort: a failing jobs listing leaves the
	// plain failure.
	e.sim.InjectFault(&ghsim.Fault{Route: "jobs", Status: 500})
	res, err = e.promotion(cfg).until()
	if res.Status != StatusFailed || !strings.Contains(res.Message, `finished "failure" (expected "success")`) {
		t.Fatalf("%+v, %v", res, err)
	}
}

// A completed run without a conclusion is no success: Running for the
// grace (GitHub can show completed a moment before the conclusion), then
// Failed naming the run; a conclusion within the grace ends it as usual.
func TestWaitStepCompletedWithoutAConclusion(t *testing.T) {
	for _, lag := range []time.Duration{wait.ConclusionGrace / 3, time.Hour} {
		t.Run(fmt.Sprint("conclusion lag ", lag), func(t *testing.T) {
			e := newWaitEnv(t, ghsim.Options{RunFor: time.Minute}, ghsim.Workflow{ConclusionLag: lag})
			cfg := e.run(map[string]any{"pollInterval": "5s"})
			p := e.promotion(cfg)
			res, err := p.until()
			if !p.said("completed without a conclusion yet") {
				t.Fatalf("messages %q", p.messages)
			}
			if lag < wait.ConclusionGrace {
				if err != nil || res.Status != StatusSucceeded || res.Output["conclusion"] != "success" {
					t.Fatalf("%+v, %v", res, err)
				}
				return
			}
			if res.Status != StatusFailed || !failure.IsFinal(err) || !strings.Contains(res.Message, fmt.Sprintf("run %v completed without a conclusion", cfg["runID"])) {
				t.Fatalf("%+v, %v", res, err)
			}
		})
	}
}

// A call whose context ends (a controller shutting down) is not the run's
// failure: Running, "stopped, state kept", the state as it was, and the
// next call goes on from it.
func TestWaitStepStoppedCallKeepsItsState(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{QueuedFor: time.Hour}, ghsim.Workflow{})
	p := e.promotion(e.run(nil))
	if res, err := p.call(context.Background()); err != nil || res.Status != StatusRunning {
		t.Fatalf("%+v, %v", res, err)
	}
	before := decodeWaitState(p.saved["wait"])
	stop := errors.New("controller shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(stop)
	for _, creds := range []func(context.Context, string) (*credentials.Credentials, error){
		kargoCreds,
		func(ctx context.Context, _ string) (*credentials.Credentials, error) { return nil, ctx.Err() },
	} {
		res, err := p.e.r.Wait(ctx, &Context{Project: "kargo-demo", Promotion: "promo", Alias: "wait", Config: p.cfg,
			SharedState: map[string]any{"wait": p.saved}, Credentials: creds, SavesState: true})
		if err != nil || res.Status != StatusRunning || !strings.Contains(res.Message, "stopped, state kept") || !strings.Contains(res.Message, "controller shutting down") {
			t.Fatalf("stopped call: %+v, %v", res, err)
		}
		if after := decodeWaitState(res.Output["wait"]); *after != *before {
			t.Fatalf("state %+v after the stopped call, %+v before", after, before)
		}
	}
	if res, err := p.call(context.Background()); err != nil || res.Status != StatusRunning || !strings.Contains(res.Message, "queued") {
		t.Fatalf("the next call: %+v, %v", res, err)
	}
}

// The command line's stopped wait says the run goes on only for a run the
// step has read.
func TestWaitStoppedSaysTheRunGoesOnOnlyOnceRead(t *testing.T) {
	cause := errors.New("the wait timeout of 5s passed")
	read := Result{Message: "run 7 is queued: https://github.com/example/test/actions/runs/7", Output: map[string]any{"wait": (&waitState{seen: true}).encode()}}
	if err := WaitStopped(read, cause); failure.IsFinal(err) || !strings.Contains(err.Error(), "the run goes on: run 7 is queued") {
		t.Fatalf("read: %v", err)
	}
	unread := Result{Message: "run 7 is not readable yet (GitHub answered 404 Not Found)", Output: map[string]any{"wait": (&waitState{}).encode()}}
	if err := WaitStopped(unread, cause); failure.IsFinal(err) || strings.Contains(err.Error(), "goes on") || !strings.Contains(err.Error(), "before the run could be read") {
		t.Fatalf("never read: %v", err)
	}
	// Only 404s so far (the timeout shorter than the grace): a run ID that
	// does not exist is final, and nothing says it exists or goes on.
	first := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	missing := Result{Message: "run 7 is not readable yet (GitHub answered 404 Not Found)", Output: map[string]any{"wait": (&waitState{firstCheck: first, notFound: true}).encode()}}
	if err := WaitStopped(missing, cause); !failure.IsFinal(err) || strings.Contains(err.Error(), "goes on") || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("only 404s: %v", err)
	}
	// GitHub failing before the run was read: a later retry may read it.
	outage := Result{Message: "GitHub failed to answer", Output: map[string]any{"wait": (&waitState{firstCheck: first, notFound: true, outageSince: first, failures: 2}).encode()}}
	if err := WaitStopped(outage, cause); failure.IsFinal(err) {
		t.Fatalf("outage: %v", err)
	}
}
