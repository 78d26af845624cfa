package wait

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// fixture is a simulator and a Checker sharing a fake clock: a run that
// takes minutes is waited for in milliseconds, as Wait's pauses move the
// clock the simulator reads.
type fixture struct {
	sim     *ghsim.Server
	repo    *ghsim.Repo
	client  *ghclient.Client
	clock   *clock.Fake
	checker *Checker
}

// newFixture's runs stay queued for queued, then run for running; the
// workflow <conclusion>.yml ends with that conclusion, and late.yml shows
// completed without a conclusion for lag first.
func newFixture(t *testing.T, queued, running, lag time.Duration) *fixture {
	t.Helper()
	// Started at the wall clock's time: the client computes rate-limit
	// waits against the wall clock.
	fake := clock.NewFake(time.Now())
	sim, pool := simtest.Start(t, ghsim.Options{QueuedFor: queued, RunFor: running, Clock: fake})
	repo := sim.AddRepo("myorg", "my-app")
	for _, c := range config.Conclusions {
		sim.AddWorkflow(repo, ghsim.Workflow{File: c + ".yml", Conclusion: c})
	}
	sim.AddWorkflow(repo, ghsim.Workflow{File: "late.yml", ConclusionLag: lag})
	sim.AddToken("ghp_wait", "octocat", false)
	r, _ := repourl.Parse("https://github.com/myorg/my-app", repourl.Options{})
	client, err := pool.Client(r, credentials.Credentials{Token: "ghp_wait", Source: "test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{sim: sim, repo: repo, client: client, clock: fake, checker: &Checker{Clock: fake}}
}

// start creates a run of the workflow file, visible at once.
func (f *fixture) start(file string) int64 {
	return f.sim.CreateRun(f.repo, file, "main", "octocat", nil, 0)
}

func TestEveryConclusionWithExpectationMetUnmetAndUnset(t *testing.T) {
	f := newFixture(t, 10*time.Second, 20*time.Second, 0)
	for _, actual := range config.Conclusions {
		for _, expected := range []string{"", "success", actual} {
			id := f.start(actual + ".yml")
			st, err := f.checker.Wait(context.Background(), f.client, id, Options{Expected: expected, PollInterval: 10 * time.Second})
			if st == nil || st.Status != "completed" || st.Conclusion != actual {
				t.Fatalf("actual %s expected %q: status %+v, %v", actual, expected, st, err)
			}
			wantMatch := expected == "" || expected == actual
			switch {
			case wantMatch && (err != nil || st.Outcome != Succeeded):
				t.Errorf("actual %s expected %q: %v, %v", actual, expected, st.Outcome, err)
			case !wantMatch && (st.Outcome != Mismatched || !failure.IsFinal(err) ||
				!strings.Contains(err.Error(), `finished "`+actual+`" (expected "`+expected+`")`) || !strings.Contains(err.Error(), st.HTMLURL)):
				t.Errorf("actual %s expected %q: %v, %v", actual, expected, st.Outcome, err)
			}
		}
	}
}

// A run that takes ten minutes, checked every 10 s: three answers count
// against the rate limit (one per status), every other check is a free 304.
func TestStatusMovesFromQueuedToCompletedAndUnchangedAnswersAre304(t *testing.T) {
	f := newFixture(t, 5*time.Minute, 5*time.Minute, 0)
	id := f.start("success.yml")
	began := f.clock.Now()
	var seen []string
	st, err := f.checker.Wait(context.Background(), f.client, id, Options{PollInterval: 10 * time.Second, OnStatus: func(s *Status) {
		if len(seen) == 0 || seen[len(seen)-1] != s.Status {
			seen = append(seen, s.Status)
		}
	}})
	if err != nil || st.Outcome != Succeeded {
		t.Fatalf("%+v, %v", st, err)
	}
	if strings.Join(seen, ",") != "queued,in_progress,completed" {
		t.Fatalf("statuses seen %v", seen)
	}
	if waited := f.clock.Now().Sub(began); waited < 10*time.Minute || waited > 10*time.Minute+10*time.Second {
		t.Fatalf("the wait ended %s after it began, want within one interval of the run's 10m", waited)
	}
	stats := f.sim.Stats()
	if stats.Counted != 3 || stats.NotModified < 55 || stats.NotModified != stats.Requests-3 {
		t.Fatalf("stats %+v, want 3 counted requests and the other 57 or so 304", stats)
	}
}

func TestMissingRunIsFinal(t *testing.T) {
	f := newFixture(t, 0, 0, 0)
	_, err := f.checker.Wait(context.Background(), f.client, 42, Options{PollInterval: 10 * time.Second})
	if err == nil || !failure.IsFinal(err) || !strings.Contains(err.Error(), "run 42 does not exist") {
		t.Fatalf("err = %v", err)
	}
}

// Faults the transport cannot absorb reach Wait's loop, which rides them
// out at their pace: 502s outlasting the transport's tries are retried at
// the next interval, and a secondary rate limit (which the transport hands
// back at once) after its Retry-After, not sooner.
func TestTransientFaultsReachingTheLoopAreRetriedAtTheirPace(t *testing.T) {
	f := newFixture(t, time.Minute, time.Minute, 0)
	id := f.start("success.yml")
	const poll, retryAfter = 10 * time.Second, 90 * time.Second
	// The transport tries a read 4 times: the first check fails after 4
	// 502s; the second meets the fifth, then the rate limit. (A rate limit
	// go-github recognises would be remembered by go-github on the wall
	// clock, and refused locally until that has passed; this one it does
	// not recognise, so it is paced by the fake clock alone.)
	f.sim.InjectFault(&ghsim.Fault{Route: "get-run", Status: 502, Times: 5})
	f.sim.InjectFault(&ghsim.Fault{Route: "get-run", SecondaryRateLimit: retryAfter, Undocumented: true, Status: 429, Times: 1})
	began := f.clock.Now()
	var firstAnswer time.Duration
	st, err := f.checker.Wait(context.Background(), f.client, id, Options{Expected: "success", PollInterval: poll, OnStatus: func(*Status) {
		if firstAnswer == 0 {
			firstAnswer = f.clock.Now().Sub(began)
		}
	}})
	if err != nil || st.Outcome != Succeeded {
		t.Fatalf("%+v, %v", st, err)
	}
	// The first check's failure waited one interval, the second's the
	// rate limit's wait (less the moment the answer took to arrive); the
	// transport's own retries of the 502s, paced on the same clock, add
	// their backoffs (0.25 + 0.5 + 1 s, then 0.25 s).
	if want := poll + retryAfter - time.Second; firstAnswer < want || firstAnswer > want+4*time.Second {
		t.Fatalf("the first answer came %s into the wait, want %s: two failed checks paced by the interval and then by Retry-After", firstAnswer, want+time.Second)
	}
}

// Stopped while the run goes on: the last status and the cause are given,
// and the error is transient (waiting again may see the run finish).
func TestStoppingEarlyLeavesTheRunAndSaysSo(t *testing.T) {
	f := newFixture(t, time.Hour, 0, 0)
	id := f.start("success.yml")
	interrupted := errors.New("interrupted")
	ctx, cancel := context.WithCancelCause(context.Background())
	checks := 0
	st, err := f.checker.Wait(ctx, f.client, id, Options{PollInterval: 10 * time.Second, OnStatus: func(*Status) {
		if checks++; checks == 3 {
			cancel(interrupted)
		}
	}})
	if err == nil || failure.IsFinal(err) || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "it was queued") {
		t.Fatalf("err = %v", err)
	}
	if st == nil || st.Outcome != Running || checks != 3 {
		t.Fatalf("last status %+v after %d checks", st, checks)
	}
}

// A completed run without a conclusion is not a success: one that gets its
// conclusion within ConclusionGrace ends with it; one that never does fails
// once the grace has passed, naming the run.
func TestCompletedWithoutAConclusionIsNotASuccess(t *testing.T) {
	for _, tt := range []struct {
		lag      time.Duration
		expected string
	}{{ConclusionGrace / 2, ""}, {ConclusionGrace / 2, "success"}, {time.Hour, ""}, {time.Hour, "success"}} {
		t.Run(fmt.Sprintf("lag %s expected %q", tt.lag, tt.expected), func(t *testing.T) {
			f := newFixture(t, 0, time.Minute, tt.lag)
			id := f.start("late.yml")
			var completedAt time.Time
			st, err := f.checker.Wait(context.Background(), f.client, id, Options{Expected: tt.expected, PollInterval: 5 * time.Second, OnStatus: func(s *Status) {
				if s.Status == "completed" && completedAt.IsZero() {
					completedAt = f.clock.Now()
				}
			}})
			if tt.lag < ConclusionGrace {
				if err != nil || st.Outcome != Succeeded || st.Conclusion != "success" {
					t.Fatalf("a conclusion %s late: %+v, %v", tt.lag, st, err)
				}
				return
			}
			if st == nil || st.Outcome != Mismatched || !failure.IsFinal(err) || !strings.Contains(err.Error(), fmt.Sprintf("run %d completed without a conclusion", id)) || !strings.Contains(err.Error(), st.HTMLURL) {
				t.Fatalf("never a conclusion: %+v, %v", st, err)
			}
			if held := f.clock.Now().Sub(completedAt); held < ConclusionGrace || held > ConclusionGrace+5*time.Second {
				t.Fatalf("failed %s after the run showed completed, want %s", held, ConclusionGrace)
			}
		})
	}
}

func TestHoldUnconcluded(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	st := &Status{Status: "completed", Outcome: Running}
	if since := st.HoldUnconcluded(time.Time{}, t0); !since.Equal(t0) || st.Outcome != Running {
		t.Fatalf("first seen: since %s, %v", since, st.Outcome)
	}
	if since := st.HoldUnconcluded(t0, t0.Add(ConclusionGrace-time.Millisecond)); !since.Equal(t0) || st.Outcome != Running {
		t.Fatalf("within the grace: since %s, %v", since, st.Outcome)
	}
	if st.HoldUnconcluded(t0, t0.Add(ConclusionGrace)); st.Outcome != Mismatched {
		t.Fatalf("past the grace: %v", st.Outcome)
	}
	done := &Status{Status: "completed", Conclusion: "success", Outcome: Succeeded}
	if since := done.HoldUnconcluded(t0, t0.Add(time.Hour)); !since.IsZero() || done.Outcome != Succeeded {
		t.Fatalf("a concluded run: since %s, %v", since, done.Outcome)
	}
}
