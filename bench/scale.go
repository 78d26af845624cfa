package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/step"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// Scenario 7: one Runner (one Kargo controller) with many promotions in
// flight on one token: waits on runs that already exist, and promotions
// that dispatch and then wait on their own run. Each promotion is called as
// Kargo calls a Running step: again after its RetryAfter, never sooner than
// Kargo's 10 s. The simulator and the Runner share a fake clock, moved a
// second at a time once every call due has returned, so that minutes of
// promotions take seconds and the counts per simulated minute are exact;
// engine-call times are wall time.

// scaleSettings size scenario 7.
type scaleSettings struct {
	waits, dispatches, workflows int
	duration                     time.Duration // simulated
	queued, running              time.Duration // each run's life
	// steadyFrom and steadyTo bound the window in which every promotion
	// has started and no wait's run has completed yet: what following
	// runs costs, without the first and last reads.
	steadyFrom, steadyTo time.Duration
	workers              int // concurrent engine calls, as reconcile workers
	// dispatchSpread, when set, spreads the dispatches' starts over this
	// long (the mixed case: searches for dispatched runs while the waits
	// are steady), and every second dispatch goes without a key, so that
	// its search lists for the whole settle. Zero: every promotion starts
	// in the first minute, every dispatch with a key.
	dispatchSpread time.Duration
}

// mixed is ss with dispatches arriving all through the steady window,
// and long enough for the last one's run to end.
func (ss scaleSettings) mixed() scaleSettings {
	ss.dispatchSpread = ss.steadyTo + (ss.steadyTo-ss.steadyFrom)/2
	ss.duration = ss.dispatchSpread + ss.queued + ss.running + time.Minute
	return ss
}

var (
	fullScale = scaleSettings{waits: 1000, dispatches: 100, workflows: 20, duration: 7 * time.Minute, queued: time.Minute, running: 4 * time.Minute,
		steadyFrom: 2 * time.Minute, steadyTo: 4 * time.Minute, workers: 4}
	shortScale = scaleSettings{waits: 60, dispatches: 6, workflows: 3, duration: 3 * time.Minute, queued: 20 * time.Second, running: 40 * time.Second,
		steadyFrom: 30 * time.Second, steadyTo: 55 * time.Second, workers: 2}
)

// kargoMinRetry: Kargo never calls a Running step again sooner.
const kargoMinRetry = 10 * time.Second

// scaleResult is scenario 7 for one answer mode and way of polling.
type scaleResult struct {
	Mode, Polling                string
	Waits, Dispatches, Workflows int
	Minutes                      float64
	DispatchSpread               time.Duration `json:",omitempty"` // the mixed case's
	// Steady*: in the steady window, per minute.
	SteadyRequestsPerMin, SteadyCountedPerMin, SteadyListingsPerMin, SteadyRunReadsPerMin float64
	Queued, Running                                                                       time.Duration
	SteadyFrom, SteadyTo                                                                  time.Duration
	Calls                                                                                 int
	RequestsPerMin, CountedPerMin                                                         float64
	NotModifiedPerMin                                                                     float64
	ListingsPerMin, RunReadsPerMin                                                        float64
	P50, P99                                                                              time.Duration
	Succeeded, Errors                                                                     int
	Misattributed                                                                         int
	HeapMiB                                                                               float64 // live heap at the end, after a GC
	PeakHeapMiB                                                                           uint64
}

// promotion is one promotion's steps as the controller holds them.
type promotion struct {
	name  string
	cfg   map[string]any
	kind  string // step.KindDispatch, then step.KindWait
	state map[string]any
	next  time.Time
	nonce string
	runID int64
	done  bool
	ok    bool // its wait succeeded
}

func runScale(ss scaleSettings, answer ghsim.DispatchAnswer, perRun bool) (scaleResult, error) {
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	opts := ghsim.Options{Answer: answer, Clock: fake, QueuedFor: ss.queued, RunFor: ss.running,
		// High enough that pacing never stretches a call: the scenario
		// compares ways of polling at the same call rate (pacing is
		// measured apart, see docs/reliability.md).
		RateLimit: 1_000_000}
	if answer != ghsim.AnswerRunDetails {
		opts.RunDelay = 2 * time.Second // with run details the answer would wait, moving the shared clock
	}
	sim, err := ghsim.New(opts)
	if err != nil {
		return scaleResult{}, err
	}
	defer sim.Close()
	repo := sim.AddRepo("bench", "app")
	for i := 0; i < ss.workflows; i++ {
		sim.AddWorkflow(repo, benchWorkflow(workflowName(i)))
	}
	sim.AddToken(token, "bench", false)
	pool := &ghclient.Pool{RootCAs: sim.RootCAs(), DialContext: sim.DialContext, Clock: fake}
	defer pool.CloseIdleConnections()
	r := &step.Runner{Clients: pool, Dispatcher: &dispatch.Dispatcher{Clock: fake}, Checker: &wait.Checker{Clock: fake, PerRun: perRun}, Clock: fake}
	repoURL := "https://github.com/bench/app"
	creds := func(_ context.Context, u string) (*credentials.Credentials, error) {
		if u != repoURL {
			return nil, nil
		}
		return &credentials.Credentials{Token: token, Source: "bench"}, nil
	}
	start := fake.Now()
	total := ss.waits + ss.dispatches
	proms := make([]*promotion, 0, total)
	for i := 0; i < ss.waits; i++ {
		id := sim.CreateRun(repo, workflowName(i%ss.workflows), "main", "bench", map[string]any{"nonce": fmt.Sprint("w", i)}, 0)
		proms = append(proms, &promotion{name: fmt.Sprint("w", i), kind: step.KindWait, runID: id,
			cfg: map[string]any{"repoURL": repoURL, "runID": id}})
	}
	for i := 0; i < ss.dispatches; i++ {
		nonce := fmt.Sprint("d", i)
		cfg := map[string]any{"repoURL": repoURL, "workflowFile": workflowName(i % ss.workflows), "ref": "main",
			"inputs": map[string]any{"nonce": nonce}, "correlationInput": correlationInput, "timeout": 120}
		if ss.dispatchSpread > 0 && i%2 == 1 {
			delete(cfg, "correlationInput")
		}
		proms = append(proms, &promotion{name: nonce, kind: step.KindDispatch, nonce: nonce, cfg: cfg})
	}
	// Promotions start spread over the first minute, as Stages do (in the
	// mixed case, dispatches over dispatchSpread).
	for i, p := range proms {
		p.next = start.Add(time.Duration(i) * time.Minute / time.Duration(total))
		if d := i - ss.waits; ss.dispatchSpread > 0 && d >= 0 {
			p.next = start.Add(time.Duration(d) * ss.dispatchSpread / time.Duration(ss.dispatches))
		}
	}
	res := scaleResult{Mode: scaleModeName(answer), Polling: "shared listing", Waits: ss.waits, Dispatches: ss.dispatches, Workflows: ss.workflows, Queued: ss.queued, Running: ss.running}
	if perRun {
		res.Polling = "per-run (before)"
	}
	if ss.dispatchSpread > 0 {
		res.Polling += ", dispatches throughout"
	}
	var peak atomic.Uint64
	stopHeap := sampleHeap(&peak)
	var times []time.Duration
	var mu sync.Mutex
	var steadyFrom, steadyTo ghsim.Stats
	for fake.Now().Sub(start) < ss.duration {
		now := fake.Now()
		switch now.Sub(start) {
		case ss.steadyFrom:
			steadyFrom = sim.Stats()
		case ss.steadyTo:
			steadyTo = sim.Stats()
		}
		var due []*promotion
		for _, p := range proms {
			if !p.done && !now.Before(p.next) {
				due = append(due, p)
			}
		}
		work := make(chan *promotion)
		var wg sync.WaitGroup
		for range ss.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range work {
					took, err := p.call(r, creds, now)
					mu.Lock()
					times = append(times, took)
					if err != nil {
						res.Errors++
					}
					mu.Unlock()
				}
			}()
		}
		for _, p := range due {
			work <- p
		}
		close(work)
		wg.Wait()
		fake.Advance(time.Second)
	}
	stopHeap()
	nonces := map[int64]string{}
	for _, ri := range sim.Runs(repo) {
		nonces[ri.ID], _ = ri.Inputs["nonce"].(string)
	}
	for _, p := range proms {
		if p.nonce != "" && p.runID != 0 && nonces[p.runID] != p.nonce {
			res.Misattributed++
		}
		if p.ok {
			res.Succeeded++
		}
	}
	st := sim.Stats()
	res.Minutes, res.DispatchSpread = ss.duration.Minutes(), ss.dispatchSpread
	res.Calls = len(times)
	res.RequestsPerMin = float64(st.Requests) / res.Minutes
	res.CountedPerMin = float64(st.Counted) / res.Minutes
	res.NotModifiedPerMin = float64(st.NotModified) / res.Minutes
	res.ListingsPerMin = float64(st.ByRoute["list-runs"]) / res.Minutes
	res.RunReadsPerMin = float64(st.ByRoute["get-run"]) / res.Minutes
	res.P50, res.P99 = percentile(times, 0.5), percentile(times, 0.99)
	if w := (ss.steadyTo - ss.steadyFrom).Minutes(); w > 0 {
		res.SteadyRequestsPerMin = float64(steadyTo.Requests-steadyFrom.Requests) / w
		res.SteadyCountedPerMin = float64(steadyTo.Counted-steadyFrom.Counted) / w
		res.SteadyListingsPerMin = float64(steadyTo.ByRoute["list-runs"]-steadyFrom.ByRoute["list-runs"]) / w
		res.SteadyRunReadsPerMin = float64(steadyTo.ByRoute["get-run"]-steadyFrom.ByRoute["get-run"]) / w
	}
	res.SteadyFrom, res.SteadyTo = ss.steadyFrom, ss.steadyTo
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	res.HeapMiB = float64(m.HeapAlloc) / (1 << 20)
	res.PeakHeapMiB = peak.Load() >> 20
	runtime.KeepAlive(r)
	return res, nil
}

// call is one engine call of the promotion's current step; its output is
// saved through JSON, as Kargo saves it.
func (p *promotion) call(r *step.Runner, creds func(context.Context, string) (*credentials.Credentials, error), now time.Time) (time.Duration, error) {
	sc := &step.Context{Project: "bench", Promotion: p.name, Alias: p.kind, Config: p.cfg, SharedState: p.state, Credentials: creds, SavesState: true}
	began := time.Now()
	var res step.Result
	var err error
	if p.kind == step.KindDispatch {
		res, err = r.Dispatch(context.Background(), sc)
	} else {
		res, err = r.Wait(context.Background(), sc)
	}
	took := time.Since(began)
	raw, _ := json.Marshal(map[string]any{p.kind: res.Output})
	p.state = nil
	_ = json.Unmarshal(raw, &p.state)
	retry := kargoMinRetry
	if res.RetryAfter != nil {
		retry = max(*res.RetryAfter, kargoMinRetry)
	}
	p.next = now.Add(retry)
	switch {
	case res.Status == step.StatusRunning:
	case p.kind == step.KindDispatch && res.Status == step.StatusSucceeded:
		id, _ := res.Output["runID"].(int64)
		p.runID, p.kind, p.state = id, step.KindWait, nil
		p.cfg = map[string]any{"repoURL": p.cfg["repoURL"], "runID": id}
	case res.Status == step.StatusSucceeded:
		p.done, p.ok = true, true
	default:
		p.done = true
		if err == nil {
			err = fmt.Errorf("%s: %s", res.Status, res.Message)
		}
		return took, err
	}
	if err != nil && res.Status != step.StatusRunning {
		return took, err
	}
	return took, nil
}

func scaleModeName(a ghsim.DispatchAnswer) string {
	switch a {
	case ghsim.AnswerRunDetails:
		return "run details"
	case ghsim.AnswerGHES320:
		return "GHES 3.20"
	}
	return "204 + listing"
}

// runScales is scenario 7 in every answer mode, shared and per-run.
func runScales(ss scaleSettings, logf func(string, ...any)) ([]scaleResult, error) {
	var out []scaleResult
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerRunDetails, ghsim.AnswerNoContent, ghsim.AnswerGHES320} {
		for _, perRun := range []bool{true, false} {
			logf("scale: %d waits and %d dispatches, %s, per-run %t", ss.waits, ss.dispatches, scaleModeName(answer), perRun)
			r, err := runScale(ss, answer, perRun)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// runMixedScales is the mixed case of scenario 7 with a shared listing:
// dispatch searches (half with a key, half without) on the same workflows
// as the waits, all through the steady window, in the modes where a
// search lists (run details: only the key's look-up before sending).
func runMixedScales(ss scaleSettings, logf func(string, ...any)) ([]scaleResult, error) {
	var out []scaleResult
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerRunDetails, ghsim.AnswerNoContent} {
		logf("scale, mixed: %d waits and %d dispatches over %s, %s", ss.waits, ss.dispatches, ss.mixed().dispatchSpread, scaleModeName(answer))
		r, err := runScale(ss.mixed(), answer, false)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
