package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// The attribution campaign: the built command, in separate processes,
// against the simulator with faults at every phase, signals included. Each
// schedule checks the four promises of a dispatch:
//
//	one-run:      one invocation never makes two runs;
//	own-run:      exit 0 prints the run this invocation created;
//	exit-75:      exit 75 means nothing was dispatched;
//	says-so:      any other exit after a run may exist says so, naming
//	              the run or where to look before dispatching again.
//
// KARGO_GHA_CAMPAIGN=N runs N schedules (the long mode: 1000); the default
// is CI's short mode. KARGO_GHA_CAMPAIGN_SEED fixes the seed.

var campaignBin struct {
	once sync.Once
	path string
	err  error
}

// builtCommand builds cmd/kargo-gha once per test binary.
func builtCommand(t *testing.T) string {
	t.Helper()
	campaignBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "kargo-gha-bin-")
		if err != nil {
			campaignBin.err = err
			return
		}
		campaignBin.path = filepath.Join(dir, "kargo-gha")
		out, err := exec.Command("go", "build", "-o", campaignBin.path, "../../cmd/kargo-gha").CombinedOutput()
		if err != nil {
			campaignBin.err = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if campaignBin.err != nil {
		t.Fatal(campaignBin.err)
	}
	return campaignBin.path
}

type schedule struct {
	seed      uint64
	answer    ghsim.DispatchAnswer
	keyed     bool
	runDelay  time.Duration
	fault     *ghsim.Fault
	faultName string
	signal    syscall.Signal
	signalAt  time.Duration
	foreign   bool // another user's run of the same workflow and ref in the window
}

func (s schedule) String() string {
	sig := "none"
	if s.signal != 0 {
		sig = fmt.Sprintf("%v at %s", s.signal, s.signalAt)
	}
	return fmt.Sprintf("seed %d: answer %d, keyed %t, run delay %s, fault %s, signal %s, foreign run %t",
		s.seed, s.answer, s.keyed, s.runDelay, s.faultName, sig, s.foreign)
}

// campaignSettle is the settle the campaign's invocations assume: longer
// than every run delay it draws (so its schedules are inside the
// documented assumption), short enough for hundreds of real processes.
const campaignSettle = "2s"

var campaignFaults = []struct {
	name  string
	fault func() *ghsim.Fault
}{
	{"none", func() *ghsim.Fault { return nil }},
	{"dispatch 502 before acting", func() *ghsim.Fault { return &ghsim.Fault{Route: "dispatch", Status: 502, Times: 1} }},
	{"dispatch 502 after acting", func() *ghsim.Fault { return &ghsim.Fault{Route: "dispatch", Status: 502, AfterAction: true, Times: 1} }},
	{"dispatch dropped before acting", func() *ghsim.Fault { return &ghsim.Fault{Route: "dispatch", Drop: true, Times: 1} }},
	{"dispatch dropped after acting", func() *ghsim.Fault { return &ghsim.Fault{Route: "dispatch", Drop: true, AfterAction: true, Times: 1} }},
	{"dispatch secondary limit 1s", func() *ghsim.Fault { return &ghsim.Fault{Route: "dispatch", SecondaryRateLimit: time.Second, Times: 1} }},
	{"dispatch 429 by headers", func() *ghsim.Fault {
		return &ghsim.Fault{Route: "dispatch", SecondaryRateLimit: time.Second, Undocumented: true, Status: 429, Times: 1}
	}},
	{"dispatch primary limit", func() *ghsim.Fault { return &ghsim.Fault{Route: "dispatch", PrimaryRateLimit: true} }},
	{"listing 503 x3", func() *ghsim.Fault { return &ghsim.Fault{Route: "list-runs", Status: 503, Times: 3} }},
	{"listing 503 always", func() *ghsim.Fault { return &ghsim.Fault{Route: "list-runs", Status: 503} }},
	{"listing dropped x2", func() *ghsim.Fault { return &ghsim.Fault{Route: "list-runs", Drop: true, Times: 2} }},
	{"listing secondary limit", func() *ghsim.Fault {
		return &ghsim.Fault{Route: "list-runs", SecondaryRateLimit: time.Second, Times: 2}
	}},
}

func newSchedule(seed uint64) schedule {
	r := rand.New(rand.NewPCG(seed, 0x6b617267))
	s := schedule{seed: seed, answer: ghsim.DispatchAnswer(r.IntN(3)), keyed: r.IntN(2) == 0, runDelay: time.Duration(r.IntN(1500)) * time.Millisecond}
	f := campaignFaults[r.IntN(len(campaignFaults))]
	s.faultName, s.fault = f.name, f.fault()
	if r.IntN(3) == 0 {
		s.signal = []syscall.Signal{syscall.SIGINT, syscall.SIGTERM}[r.IntN(2)]
		s.signalAt = time.Duration(r.IntN(2500)) * time.Millisecond
	}
	s.foreign = r.IntN(4) == 0
	return s
}

type outcome struct {
	exit           int
	stdout, stderr string
	ours           []ghsim.RunInfo // runs created with this invocation's nonce
	printed        int64
}

// violations are the promises s broke, by name.
func (o outcome) violations() []string {
	var v []string
	if len(o.ours) > 1 {
		v = append(v, "one-run")
	}
	switch o.exit {
	case ExitOK:
		if len(o.ours) != 1 || o.printed != o.ours[0].ID {
			v = append(v, "own-run")
		}
	case ExitTransient:
		if len(o.ours) != 0 {
			v = append(v, "exit-75")
		}
	default:
		if len(o.ours) == 1 && !saysWhatMayExist(o.stderr, o.ours[0].ID) {
			v = append(v, "says-so")
		}
	}
	return v
}

func saysWhatMayExist(stderr string, id int64) bool {
	return strings.Contains(stderr, strconv.FormatInt(id, 10)) ||
		(strings.Contains(stderr, "/actions/workflows/deploy.yml") && strings.Contains(stderr, "before dispatching again"))
}

// campaignSim is a simulator whose deploy.yml echoes the correlation key
// in its run-name, with the test token (user octocat). It closes with t.
func campaignSim(t *testing.T, answer ghsim.DispatchAnswer, runDelay time.Duration) (*ghsim.Server, *ghsim.Repo) {
	t.Helper()
	sim, err := ghsim.New(ghsim.Options{Answer: answer, RunDelay: runDelay, QueuedFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	repo := sim.AddRepo("myorg", "my-app")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"environment", "nonce", "dispatch_key"}, RunName: "Deploy ${{ inputs.environment }} ${{ inputs.dispatch_key }}"})
	sim.AddToken(testToken, "octocat", false)
	return sim, repo
}

func runSchedule(t *testing.T, bin string, s schedule) outcome {
	t.Helper()
	sim, repo := campaignSim(t, s.answer, s.runDelay)
	defer sim.Close() // now, not at the end of the campaign: one per schedule
	if s.fault != nil {
		sim.InjectFault(s.fault)
	}
	dir, err := os.MkdirTemp("", "campaign-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ca := filepath.Join(dir, "ca.pem")
	_ = os.WriteFile(ca, sim.CACertPEM, 0o600)
	nonce := fmt.Sprintf("n%d", s.seed)
	args := []string{"dispatch", "--repo-url", sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main",
		"--input", "environment=prod", "--input", "nonce=" + nonce, "--timeout", "8", "--settle", campaignSettle}
	if s.keyed {
		args = append(args, "--correlation-input", "dispatch_key")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"SSL_CERT_FILE=" + ca, "GH_TOKEN=" + testToken, "PATH=" + os.Getenv("PATH")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if s.foreign {
		go func() {
			time.Sleep(time.Duration(s.seed%700) * time.Millisecond)
			actor := "someone-else" // filtered out by the token's login
			if s.seed%2 == 0 {
				actor = "octocat" // the same credentials in another process
			}
			sim.CreateRun(repo, "deploy.yml", "main", actor, map[string]any{"nonce": "theirs"}, 0)
		}()
	}
	if s.signal != 0 {
		timer := time.AfterFunc(s.signalAt, func() { _ = cmd.Process.Signal(s.signal) })
		defer timer.Stop()
	}
	_ = cmd.Wait()
	o := outcome{exit: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	time.Sleep(s.runDelay + 100*time.Millisecond) // a run created late still counts
	for _, r := range sim.Runs(repo) {
		if r.Inputs["nonce"] == nonce {
			o.ours = append(o.ours, r)
		}
	}
	var out struct{ RunID int64 }
	if json.Unmarshal(stdout.Bytes(), &out) == nil {
		o.printed = out.RunID
	}
	return o
}

func TestAttributionCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built command hundreds of times")
	}
	n := 120
	if v, err := strconv.Atoi(os.Getenv("KARGO_GHA_CAMPAIGN")); err == nil && v > 0 {
		n = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("KARGO_GHA_CAMPAIGN_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("campaign: %d schedules from seed %d (KARGO_GHA_CAMPAIGN_SEED=%d to replay)", n, seed, seed)
	bin := builtCommand(t)
	var mu sync.Mutex
	violations := map[string]int{}
	exits := map[int]int{}
	sem := make(chan struct{}, 24) // the processes mostly wait on the simulator
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		s := newSchedule(seed + uint64(i))
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			o := runSchedule(t, bin, s)
			mu.Lock()
			defer mu.Unlock()
			exits[o.exit]++
			for _, v := range o.violations() {
				violations[v]++
				t.Errorf("%s broke %q: exit %d, %d runs of ours, printed %d\nstdout: %s\nstderr: %s", s, v, o.exit, len(o.ours), o.printed, o.stdout, o.stderr)
			}
			if strings.Contains(o.stdout+o.stderr, testToken) || strings.ContainsAny(o.stderr, "\x1b") {
				t.Errorf("%s: a token or an escape on the output", s)
			}
		}()
	}
	wg.Wait()
	t.Logf("campaign: %d schedules; exits %v; violations %v (one-run, own-run, exit-75, says-so)", n, exits, violations)
}

// Several processes dispatch the same workflow and ref at once, in every
// answer mode, with and without correlationInput. Without it, a process may
// refuse (ambiguous) but never prints another's run; with it, none fails.
func TestCrossProcessAttribution(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built command in up to 20 processes at once")
	}
	bin := builtCommand(t)
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerRunDetails, ghsim.AnswerNoContent, ghsim.AnswerGHES320} {
		for _, keyed := range []bool{false, true} {
			for _, n := range []int{2, 5, 20} {
				name := fmt.Sprintf("answer %d, correlation %t, %d processes", answer, keyed, n)
				t.Run(name, func(t *testing.T) {
					t.Parallel() // separate simulators; the processes mostly wait
					c := crossProcess(t, bin, answer, keyed, n)
					t.Logf("%s: %d ok, %d wrong, %d shared, %d ambiguous (refused), %d other failures", name, c.ok, c.wrong, c.shared, c.ambiguous, c.failed)
					if c.wrong > 0 || c.shared > 0 {
						t.Errorf("%d wrong and %d shared attributions", c.wrong, c.shared)
					}
					if keyed && c.ok != n {
						t.Errorf("with correlationInput %d of %d failed", n-c.ok, n)
					}
				})
			}
		}
	}
}

type crossCounts struct{ ok, wrong, shared, ambiguous, failed int }

func crossProcess(t *testing.T, bin string, answer ghsim.DispatchAnswer, keyed bool, n int) crossCounts {
	sim, repo := campaignSim(t, answer, time.Second)
	ca := writeFile(t, "ca.pem", string(sim.CACertPEM))
	type result struct {
		exit    int
		printed int64
		stderr  string
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			args := []string{"dispatch", "--repo-url", sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main",
				"--input", "environment=prod", "--input", fmt.Sprintf("nonce=p%d", i), "--timeout", "30", "--settle", campaignSettle}
			if keyed {
				args = append(args, "--correlation-input", "dispatch_key")
			}
			exit, printed, stderr := invokeDispatch(bin, ca, args...)
			results[i] = result{exit: exit, printed: printed, stderr: stderr}
		}(i)
	}
	wg.Wait()
	owner := map[int64]string{}
	for _, r := range sim.Runs(repo) {
		owner[r.ID] = fmt.Sprint(r.Inputs["nonce"])
	}
	var c crossCounts
	printedBy := map[int64]int{}
	for i, r := range results {
		switch {
		case r.exit == 0 && owner[r.printed] == fmt.Sprintf("p%d", i):
			c.ok++
		case r.exit == 0:
			c.wrong++
		case strings.Contains(r.stderr, "cannot tell which run"):
			c.ambiguous++
		default:
			c.failed++
			t.Logf("process %d: exit %d: %s", i, r.exit, r.stderr)
		}
		if r.exit == 0 {
			printedBy[r.printed]++
		}
	}
	for _, k := range printedBy {
		if k > 1 {
			c.shared += k
		}
	}
	return c
}

// The same --correlation-id is the same dispatch. Invoked again after its
// run exists, the command prints that run and dispatches nothing; invoked
// twice at once, at most one invocation prints a run, and never the
// other's.
func TestCorrelationIDIsAnIdempotencyKeyAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built command in separate processes")
	}
	bin := builtCommand(t)
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerRunDetails, ghsim.AnswerNoContent} {
		t.Run(fmt.Sprint("answer ", answer), func(t *testing.T) {
			t.Parallel()
			sim, repo := campaignSim(t, answer, 300*time.Millisecond)
			ca := writeFile(t, "ca.pem", string(sim.CACertPEM))
			invoke := func(nonce, key string) (int, int64, string) {
				return invokeDispatch(bin, ca, "dispatch", "--repo-url", sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main",
					"--input", "environment=prod", "--input", "nonce="+nonce, "--timeout", "20", "--settle", campaignSettle,
					"--correlation-input", "dispatch_key", "--correlation-id", key)
			}
			owner := func(id int64) string {
				for _, r := range sim.Runs(repo) {
					if r.ID == id {
						return fmt.Sprint(r.Inputs["nonce"])
					}
				}
				return ""
			}
			// In a row: the second invocation is the first's dispatch.
			code, first, stderr := invoke("first", "deploy-v1.2")
			if code != 0 || owner(first) != "first" {
				t.Fatalf("first: exit %d, run %d: %s", code, first, stderr)
			}
			code, again, stderr := invoke("again", "deploy-v1.2")
			if code != 0 || again != first || !strings.Contains(stderr, "nothing was dispatched") || len(sim.Runs(repo)) != 1 {
				t.Fatalf("again: exit %d, run %d (first %d), %d runs: %s", code, again, first, len(sim.Runs(repo)), stderr)
			}
			// At once, in pairs.
			for pair := 0; pair < 3; pair++ {
				key := fmt.Sprintf("release-%d-%d", answer, pair)
				var wg sync.WaitGroup
				codes, printed, stderrs := make([]int, 2), make([]int64, 2), make([]string, 2)
				for i := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						codes[i], printed[i], stderrs[i] = invoke(fmt.Sprintf("%s-%d", key, i), key)
					}()
				}
				wg.Wait()
				var own []int64
				for i := range 2 {
					if codes[i] != 0 {
						continue
					}
					// A run printed is this invocation's, or, when it sent
					// nothing, the one dispatch of this key.
					mine := owner(printed[i]) == fmt.Sprintf("%s-%d", key, i)
					if !mine && !strings.Contains(stderrs[i], "nothing was dispatched") {
						t.Errorf("pair %d: invocation %d printed run %d of %q: %s", pair, i, printed[i], owner(printed[i]), stderrs[i])
					}
					if mine {
						own = append(own, printed[i])
					}
				}
				if len(own) > 1 {
					t.Errorf("pair %d: both invocations dispatched and printed a run (%v)", pair, own)
				}
			}
		})
	}
}

// invokeDispatch runs the built command with the test token, trusting the
// simulator's CA, and returns its exit code, the runID it printed (0 for
// none) and its stderr.
func invokeDispatch(bin, ca string, args ...string) (exit int, runID int64, stderr string) {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"SSL_CERT_FILE=" + ca, "GH_TOKEN=" + testToken}
	var stdout, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &errOut
	_ = cmd.Run()
	var out struct{ RunID int64 }
	_ = json.Unmarshal(stdout.Bytes(), &out)
	return cmd.ProcessState.ExitCode(), out.RunID, errOut.String()
}
