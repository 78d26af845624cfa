package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// settings size a run: the full run for the report, a short one for CI.
type settings struct {
	delays           []time.Duration // run-creation delays L
	overheadN        int             // dispatches per (approach, L, mode)
	concurrencyN     int             // scenario 3, with a correlation key
	concurrencyDelay time.Duration
	unkeyedN         int           // scenario 3 without a key: sent one at a time
	appN             int           // scenario 4
	baselinePoll     time.Duration // baseline (a)'s poll interval
	waitPoll         time.Duration // scenario 5's stand-in for 30 s
	budgetN          int           // scenario 6: invocations per case
	scale            scaleSettings // scenario 7
	// speed is how fast the clock of the dispatcher, the simulator and the
	// baselines runs: 1 is real time (the report); faster in the short
	// setting, where timings are not meaningful and only counts are read.
	speed float64
	// clk is the run's clock, made from speed by run.
	clk clock.Clock
}

var full = settings{
	delays: []time.Duration{500 * time.Millisecond, 2 * time.Second, 5 * time.Second}, overheadN: 40,
	concurrencyN: 1000, concurrencyDelay: 500 * time.Millisecond, unkeyedN: 3, appN: 1000, baselinePoll: 5 * time.Second, waitPoll: 50 * time.Millisecond,
	budgetN: 50, speed: 1, scale: fullScale,
}

var short = settings{
	delays: []time.Duration{50 * time.Millisecond, 200 * time.Millisecond}, overheadN: 4,
	concurrencyN: 30, concurrencyDelay: 50 * time.Millisecond, unkeyedN: 3, appN: 20, baselinePoll: 300 * time.Millisecond, waitPoll: 10 * time.Millisecond,
	budgetN: 3, speed: 20, scale: shortScale,
}

// ours is this project's approach on the run's clock, with a Dispatcher
// of its own (a process of its own).
func (s settings) ours(correlationInput string) ours {
	return ours{d: &dispatch.Dispatcher{Clock: s.clk}, correlationInput: correlationInput}
}

func (s settings) fixedPoll() fixedPoll { return fixedPoll{pollEvery: s.baselinePoll, clk: s.clk} }

const token = "ghp_benchmark_token"

// correlationInput is the input that carries a dispatch's key; every
// workflow of the benchmark declares it and echoes it in its run-name.
const correlationInput = "dispatch_key"

// env is one simulator with one repository and many workflows, and a
// client for it under github.com's name (rate limits are counted there).
type env struct {
	sim    *ghsim.Server
	repo   *ghsim.Repo
	pool   *ghclient.Pool
	client *ghclient.Client
}

func newEnv(opts ghsim.Options, workflows int) (*env, error) {
	sim, err := ghsim.New(opts)
	if err != nil {
		return nil, err
	}
	repo := sim.AddRepo("bench", "app")
	for i := 0; i < workflows; i++ {
		sim.AddWorkflow(repo, benchWorkflow(workflowName(i)))
	}
	sim.AddWorkflow(repo, benchWorkflow("warm-up.yml"))
	sim.AddToken(token, "bench", false)
	e := &env{sim: sim, repo: repo, pool: &ghclient.Pool{RootCAs: sim.RootCAs(), DialContext: sim.DialContext}}
	e.client, err = e.clientFor(credentials.Credentials{Token: token, Source: "bench"})
	return e, err
}

func (e *env) clientFor(creds credentials.Credentials) (*ghclient.Client, error) {
	r, err := repourl.Parse("https://github.com/bench/app", repourl.Options{})
	if err != nil {
		return nil, err
	}
	return e.pool.Client(r, creds, false)
}

func (e *env) close() { e.pool.CloseIdleConnections(); e.sim.Close() }

func workflowName(i int) string { return fmt.Sprintf("wf-%04d.yml", i) }

// benchWorkflow declares the nonce (which dispatch made a run) and the
// correlation input, and echoes the key in the run title as the README
// tells users to; dispatches without a key leave it out of the title.
func benchWorkflow(file string) ghsim.Workflow {
	return ghsim.Workflow{File: file, Inputs: []string{"nonce", correlationInput},
		RunName: "Deploy ${{ inputs." + correlationInput + " }}"}
}

// nonceOf says which dispatch really created a run.
func (e *env) nonceOf() map[int64]string {
	out := map[int64]string{}
	for _, r := range e.sim.Runs(e.repo) {
		out[r.ID], _ = r.Inputs["nonce"].(string)
	}
	return out
}

// modeName names the dispatch answer modes.
func modeName(a ghsim.DispatchAnswer) string {
	if a == ghsim.AnswerRunDetails {
		return "run details (200)"
	}
	return "204 + listing"
}

// overheadCell is scenarios 1 and 2 for one approach, L and mode.
type overheadCell struct {
	Approach, Mode         string
	L                      time.Duration
	P50, P99               time.Duration
	OK, Errors             int
	Counted, Total, Points float64 // per successful dispatch
	Misattributed          int
}

// runOverhead dispatches n workflows at once (one each, so nothing waits
// for anything else) and measures time to run ID beyond L.
func runOverhead(s settings, a approach, answer ghsim.DispatchAnswer, l time.Duration) (overheadCell, error) {
	e, err := newEnv(ghsim.Options{Answer: answer, RunDelay: l, Clock: s.clk}, s.overheadN)
	if err != nil {
		return overheadCell{}, err
	}
	defer e.close()
	ctx := context.Background()
	if o, ok := a.(ours); ok {
		// A long-lived process has met the host before.
		_, _ = o.dispatch(ctx, e.client, "warm-up.yml", "warm-up")
	}
	e.sim.ResetStats()
	durations := make([]time.Duration, s.overheadN)
	ids := make([]int64, s.overheadN)
	errs := make([]error, s.overheadN)
	var wg sync.WaitGroup
	for i := 0; i < s.overheadN; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			start := s.clk.Now()
			ids[i], errs[i] = a.dispatch(ctx, e.client, workflowName(i), fmt.Sprint(i))
			durations[i] = s.clk.Now().Sub(start) - l
		}(i)
	}
	wg.Wait()
	cell := overheadCell{Approach: a.name(), Mode: modeName(answer), L: l}
	var ok []time.Duration
	nonces := e.nonceOf()
	for i := range ids {
		if errs[i] != nil {
			cell.Errors++
			continue
		}
		ok = append(ok, durations[i])
		if nonces[ids[i]] != fmt.Sprint(i) {
			cell.Misattributed++
		}
	}
	cell.OK = len(ok)
	cell.P50, cell.P99 = percentile(ok, 0.50), percentile(ok, 0.99)
	if cell.OK > 0 {
		st := e.sim.Stats()
		cell.Counted = float64(st.Counted) / float64(cell.OK)
		cell.Total = float64(st.Requests) / float64(cell.OK)
		cell.Points = float64(st.SecondaryPoints) / float64(cell.OK)
	}
	return cell, nil
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

// concurrencyResult is scenario 3 for one approach.
type concurrencyResult struct {
	Approach                    string
	N, OK, Errors               int
	Misattributed, ClaimedTwice int
	Wall                        time.Duration
	// Times are the successful dispatches' times to their run ID, shortest
	// first, kept for small runs only (the one without a key).
	Times             []time.Duration `json:",omitempty"`
	Requests, Counted int
	PeakHeapMiB       uint64
}

// maxTimes: runs of more dispatches keep no times of their own.
const maxTimes = 10

// runConcurrency: n dispatches of one workflow and ref at once, in 204 mode.
func runConcurrency(s settings, a approach, n int) (concurrencyResult, error) {
	e, err := newEnv(ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: s.concurrencyDelay, Clock: s.clk}, 1)
	if err != nil {
		return concurrencyResult{}, err
	}
	defer e.close()
	ctx := context.Background()
	if o, ok := a.(ours); ok && o.correlationInput != "" {
		// A long-lived process has met the host before. (Not without a
		// key: that costs a whole settle, to save one GET /user.)
		_, _ = o.dispatch(ctx, e.client, "warm-up.yml", "warm-up")
	}
	e.sim.ResetStats()
	runtime.GC()
	var peak atomic.Uint64
	stop := sampleHeap(&peak)
	ids := make([]int64, n)
	errs := make([]error, n)
	times := make([]time.Duration, n)
	start := s.clk.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			t0 := s.clk.Now()
			ids[i], errs[i] = a.dispatch(ctx, e.client, workflowName(0), fmt.Sprint(i))
			times[i] = s.clk.Now().Sub(t0)
		}(i)
	}
	wg.Wait()
	wall := s.clk.Now().Sub(start)
	stop()
	res := concurrencyResult{Approach: a.name(), N: n, Wall: wall, PeakHeapMiB: peak.Load() >> 20}
	nonces := e.nonceOf()
	claims := map[int64]int{}
	for i := range ids {
		if errs[i] != nil {
			res.Errors++
			continue
		}
		res.OK++
		if n <= maxTimes {
			res.Times = append(res.Times, times[i])
		}
		claims[ids[i]]++
		if nonces[ids[i]] != fmt.Sprint(i) {
			res.Misattributed++
		}
	}
	for _, k := range claims {
		if k > 1 {
			res.ClaimedTwice += k - 1
		}
	}
	sort.Slice(res.Times, func(i, j int) bool { return res.Times[i] < res.Times[j] })
	st := e.sim.Stats()
	res.Requests, res.Counted = st.Requests, st.Counted
	return res, nil
}

func sampleHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() { close(done) }
}

// tokenResult is scenario 4.
type tokenResult struct {
	Approach  string
	N         int
	Exchanges int
	Errors    int
}

// runTokens dispatches n times with GitHub App credentials. perDispatch
// mints a token for every dispatch (a fresh client each time), as a job
// that creates its own App token does.
func runTokens(s settings, perDispatch bool) (tokenResult, error) {
	e, err := newEnv(ghsim.Options{Clock: s.clk}, 1)
	if err != nil {
		return tokenResult{}, err
	}
	defer e.close()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return tokenResult{}, err
	}
	e.sim.AddApp(&ghsim.App{ID: 1, ClientID: "Iv23liBench", PublicKey: &key.PublicKey, Installations: map[int64][]string{7: {"bench/app"}}})
	creds := credentials.Credentials{Source: "bench", App: &credentials.App{ClientID: "Iv23liBench", InstallationID: 7,
		PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})}}
	d := &dispatch.Dispatcher{Clock: s.clk}
	res := tokenResult{Approach: "kargo-gha (shared installation token)", N: s.appN}
	if perDispatch {
		res.Approach = "baseline: a token per dispatch"
	}
	var wg sync.WaitGroup
	var failed atomic.Int32
	sem := make(chan struct{}, 50)
	for i := 0; i < s.appN; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := e.clientFor(creds)
			if perDispatch {
				c, err = (&env{sim: e.sim, pool: &ghclient.Pool{RootCAs: e.sim.RootCAs(), DialContext: e.sim.DialContext}}).clientFor(creds)
			}
			if err == nil {
				_, err = (ours{d: d}).dispatch(context.Background(), c, workflowName(0), fmt.Sprint(i))
			}
			if err != nil {
				failed.Add(1)
			}
		}(i)
	}
	wg.Wait()
	res.Errors = int(failed.Load())
	res.Exchanges = e.sim.Stats().TokenExchanges
	return res, nil
}

// waitResult is scenario 5: what waiting on one run costs.
type waitResult struct {
	Approach        string
	Checks          int
	Counted         int
	CountedPer10Min float64 // at pollInterval 30 s: 20 checks
}

// runWait waits on a run that changes status twice (queued, in_progress,
// completed) over about 20 checks. It runs on the system clock in every
// setting: pkg/wait's Checker polls on real timers (20 polls of waitPoll).
func runWait(s settings, conditional bool) (waitResult, error) {
	life := 20 * s.waitPoll
	e, err := newEnv(ghsim.Options{QueuedFor: life / 3, RunFor: life * 2 / 3}, 1)
	if err != nil {
		return waitResult{}, err
	}
	defer e.close()
	ctx := context.Background()
	id, err := (ours{d: &dispatch.Dispatcher{}}).dispatch(ctx, e.client, workflowName(0), "w")
	if err != nil {
		return waitResult{}, err
	}
	e.sim.ResetStats()
	res := waitResult{Approach: "kargo-gha (conditional requests)"}
	if conditional {
		_, err = (&wait.Checker{}).Wait(ctx, e.client, id, wait.Options{PollInterval: s.waitPoll, OnStatus: func(*wait.Status) { res.Checks++ }})
	} else {
		res.Approach = "baseline: plain polling"
		for {
			status, gerr := plainGet(ctx, e.client, id)
			res.Checks++
			if gerr != nil || status == "completed" {
				err = gerr
				break
			}
			time.Sleep(s.waitPoll)
		}
	}
	st := e.sim.Stats()
	res.Counted = st.Counted
	if res.Checks > 0 {
		res.CountedPer10Min = float64(st.Counted) * 20 / float64(res.Checks)
	}
	return res, err
}
