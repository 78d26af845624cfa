package step

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// freightSHA is the commit a promotion promotes; movedSHA the one main
// points at once it has moved after the Freight was made.
var (
	freightSHA = strings.Repeat("9f", 20)
	movedSHA   = strings.Repeat("b4", 20)
)

func withCommit(cfg map[string]any, kv ...any) map[string]any {
	out := map[string]any{"expectedHeadSHA": freightSHA}
	for k, v := range cfg {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// The run's commit, checked against expectedHeadSHA, on a host that names
// the run in its answer and on one that does not: the promoted commit
// passes; a branch moved between the Freight and the dispatch is a final
// failure naming the run and both commits, and nothing is cancelled or
// dispatched again unless asked. Without expectedHeadSHA a run-details
// dispatch costs one counted request, as before.
func TestDispatchStepChecksTheRunsCommit(t *testing.T) {
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerRunDetails, ghsim.AnswerNoContent} {
		tests := []struct {
			name     string
			cfg      map[string]any
			move     bool
			status   Status
			msg      []string
			headSHA  string // "" when it must be absent
			getRuns  int    // reads of the run by the dispatch step
			counted  int    // for run details only; 0: not checked
			noCancel bool
		}{
			{name: "no expectedHeadSHA", cfg: dispatchCfg, status: StatusSucceeded, headSHA: map[bool]string{true: "", false: freightSHA}[answer == ghsim.AnswerRunDetails], counted: 1},
			{name: "the promoted commit", cfg: withCommit(dispatchCfg), status: StatusSucceeded, headSHA: freightSHA,
				msg: []string{"builds commit " + freightSHA + ", as expected"}, getRuns: map[bool]int{true: 1, false: 0}[answer == ghsim.AnswerRunDetails]},
			{name: "branch moved", cfg: withCommit(dispatchCfg), move: true, status: StatusFailed, headSHA: movedSHA, getRuns: map[bool]int{true: 1, false: 0}[answer == ghsim.AnswerRunDetails],
				msg: []string{"builds commit " + movedSHA + " on main, not the expected commit " + freightSHA, "the run was not cancelled"}},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("answer %d/%s", answer, tt.name), func(t *testing.T) {
				sim, newRunner := engineSim(t, ghsim.Options{Answer: answer, RunDelay: 200 * time.Millisecond})
				repo := sim.Repo("example", "test")
				sim.SetRefCommit(repo, "main", freightSHA)
				if tt.move {
					sim.SetRefCommit(repo, "main", movedSHA)
				}
				p := &promotion{t: t, name: "promo-" + tt.name, alias: "dispatch", sim: sim}
				res, err := p.until(newRunner(), dispatchStep, tt.cfg)
				if res.Status != tt.status || (tt.status == StatusFailed) != (err != nil) || (err != nil && !failure.IsFinal(err)) {
					t.Fatalf("%+v, %v", res, err)
				}
				for _, m := range tt.msg {
					if !strings.Contains(res.Message, m) {
						t.Errorf("message %q lacks %q", res.Message, m)
					}
				}
				if got, _ := res.Output["headSHA"].(string); got != tt.headSHA {
					t.Errorf("headSHA %q, want %q (output %v)", got, tt.headSHA, res.Output)
				}
				if tt.headSHA != "" && res.Output["headBranch"] != "main" {
					t.Errorf("headBranch %v, want main", res.Output["headBranch"])
				}
				st := sim.Stats()
				if st.Dispatches != 1 || st.ByRoute["cancel"] != 0 || st.ByRoute["get-run"] != tt.getRuns {
					t.Fatalf("%d dispatches, %d cancels, %d run reads (want 1, 0, %d)", st.Dispatches, st.ByRoute["cancel"], st.ByRoute["get-run"], tt.getRuns)
				}
				if tt.counted > 0 && answer == ghsim.AnswerRunDetails && st.Counted != tt.counted {
					t.Fatalf("%d counted requests, want %d", st.Counted, tt.counted)
				}
				if p.maxReqs > 1 {
					t.Fatalf("one call made %d requests", p.maxReqs)
				}
				if tt.status == StatusFailed {
					if _, ok := res.Output["runID"]; ok {
						t.Fatalf("a mismatched run must not be output as the dispatch's run: %v", res.Output)
					}
					again, err := p.call(newRunner(), dispatchStep, tt.cfg, true)
					if again.Status != StatusFailed || !failure.IsFinal(err) || sim.Stats().Dispatches != 1 {
						t.Fatalf("called again after the mismatch: %+v, %v, %d dispatches", again, err, sim.Stats().Dispatches)
					}
				}
			})
		}
	}
}

// cancelOnMismatch cancels the mismatched run once, after the cancel is
// saved, and says what GitHub answered; a later call, a restarted
// controller, a lost answer and a run that had completed never make it
// send a second cancel.
func TestDispatchStepCancelsAMismatchedRunOnce(t *testing.T) {
	tests := []struct {
		name    string
		opts    ghsim.Options
		fault   *ghsim.Fault
		restart bool // the controller dies after saving the cancel, before sending it
		want    string
		cancels int // cancels the simulator applied
		sent    int // cancel requests it received
	}{
		{name: "accepted", want: "was sent once and GitHub accepted it (202): the run is being cancelled", cancels: 1, sent: 1},
		{name: "run already completed", opts: ghsim.Options{RunFor: time.Millisecond}, want: "GitHub answered 409: the run had already completed", sent: 1},
		{name: "answer lost", fault: &ghsim.Fault{Route: "cancel", Status: 502, AfterAction: true}, want: "its answer was lost", cancels: 1, sent: 1},
		{name: "refused", fault: &ghsim.Fault{Route: "cancel", Status: 403}, want: "GitHub refused it", sent: 1},
		{name: "restarted before sending", restart: true, want: "recorded by an earlier process, which may have sent it; it is not sent again", sent: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Answer = ghsim.AnswerNoContent
			if tt.opts.RunFor == 0 {
				tt.opts.QueuedFor, tt.opts.RunFor = time.Minute, time.Hour
			}
			sim, newRunner := engineSim(t, tt.opts)
			repo := sim.Repo("example", "test")
			sim.SetRefCommit(repo, "main", movedSHA)
			if tt.fault != nil {
				sim.InjectFault(tt.fault)
			}
			cfg := withCommit(dispatchCfg, "cancelOnMismatch", true)
			p := &promotion{t: t, name: "promo-cancel-" + tt.name, alias: "dispatch", sim: sim}
			r := newRunner()
			var res Result
			var err error
			for i := 0; i < 100; i++ {
				res, err = p.call(r, dispatchStep, cfg, true)
				if res.Status != StatusRunning {
					break
				}
				if _, ok := res.Output["cancel"]; ok && tt.restart {
					cancels = &cancelMemory{} // a new process: its memory is empty
					r = newRunner()
				}
				pause(r, *res.RetryAfter)
			}
			if res.Status != StatusFailed || !failure.IsFinal(err) || !strings.Contains(res.Message, tt.want) ||
				!strings.Contains(res.Message, movedSHA) || !strings.Contains(res.Message, freightSHA) {
				t.Fatalf("%+v, %v\nwant %q", res, err, tt.want)
			}
			again, _ := p.call(newRunner(), dispatchStep, cfg, true)
			if again.Status != StatusFailed || !strings.Contains(again.Message, tt.want) {
				t.Fatalf("called again: %+v", again)
			}
			runs := sim.Runs(repo)
			if len(runs) != 1 {
				t.Fatalf("%d runs", len(runs))
			}
			if got := sim.Stats().ByRoute["cancel"]; got != tt.sent {
				t.Fatalf("%d cancel requests, want %d", got, tt.sent)
			}
			if got := sim.Cancels(repo, runs[0].ID); got != tt.cancels {
				t.Fatalf("the run was cancelled %d times, want %d", got, tt.cancels)
			}
		})
	}
}

// A run GitHub named before its replicas can serve it: reading its commit
// answers 404 for a while, which is retried (Running), never a second
// dispatch; then the commit is checked as usual.
func TestDispatchStepReadsTheCommitOfALaggingRun(t *testing.T) {
	sim, newRunner := engineSim(t, ghsim.Options{ReadLag: 5 * time.Second})
	sim.SetRefCommit(sim.Repo("example", "test"), "main", freightSHA)
	p := &promotion{t: t, name: "promo-lag", alias: "dispatch", sim: sim}
	res, err := p.until(newRunner(), dispatchStep, withCommit(dispatchCfg))
	if err != nil || res.Status != StatusSucceeded || res.Output["headSHA"] != freightSHA {
		t.Fatalf("%+v, %v", res, err)
	}
	if st := sim.Stats(); st.Dispatches != 1 || st.ByRoute["get-run"] < 2 {
		t.Fatalf("%d dispatches, %d run reads: want 1 and a retried read", st.Dispatches, st.ByRoute["get-run"])
	}
}
