package wait

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/config"
	"github.com/kargo-gha/kargo-gha/pkg/credentials"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/repourl"
)

type fixture struct {
	sim    *ghsim.Server
	client *ghclient.Client
}

func newFixture(t *testing.T, queued, running time.Duration) *fixture {
	t.Helper()
	sim, pool := simtest.Start(t, ghsim.Options{QueuedFor: queued, RunFor: running})
	repo := sim.AddRepo("myorg", "my-app")
	for _, c := range config.Conclusions {
		sim.AddWorkflow(repo, ghsim.Workflow{File: c + ".yml", Conclusion: c})
	}
	sim.AddToken("ghp_wait", "octocat", false)
	r, _ := repourl.Parse("https://github.com/myorg/my-app", repourl.Options{})
	client, err := pool.Client(r, credentials.Credentials{Token: "ghp_wait", Source: "test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{sim: sim, client: client}
}

// start dispatches a workflow that ends with conclusion and returns its run.
func (f *fixture) start(t *testing.T, conclusion string) int64 {
	t.Helper()
	res, err := (&dispatch.Dispatcher{}).Dispatch(context.Background(), f.client, dispatch.Request{WorkflowFile: conclusion + ".yml", Ref: "main", Timeout: 10 * time.Second}, "")
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

func TestEveryConclusionWithExpectationMetUnmetAndUnset(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond, 20*time.Millisecond)
	for _, actual := range config.Conclusions {
		for _, expected := range []string{"", "success", actual} {
			id := f.start(t, actual)
			st, err := (&Checker{}).Wait(context.Background(), f.client, id, Options{Expected: expected, PollInterval: 20 * time.Millisecond})
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

func TestStatusMovesFromQueuedToCompletedAndUnchangedAnswersAre304(t *testing.T) {
	f := newFixture(t, 300*time.Millisecond, 300*time.Millisecond)
	id := f.start(t, "success")
	f.sim.ResetStats()
	var mu sync.Mutex
	var seen []string
	st, err := (&Checker{}).Wait(context.Background(), f.client, id, Options{PollInterval: 25 * time.Millisecond, OnStatus: func(s *Status) {
		mu.Lock()
		defer mu.Unlock()
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
	stats := f.sim.Stats()
	// One counted answer per status; every other check was a free 304.
	if stats.Counted != 3 || stats.NotModified < 10 || stats.NotModified != stats.Requests-3 {
		t.Fatalf("stats %+v, want 3 counted requests and the rest 304", stats)
	}
}

func TestMissingRunIsFinal(t *testing.T) {
	f := newFixture(t, 0, 0)
	_, err := (&Checker{}).Wait(context.Background(), f.client, 42, Options{PollInterval: 10 * time.Millisecond})
	if err == nil || !failure.IsFinal(err) || !strings.Contains(err.Error(), "run 42 does not exist") {
		t.Fatalf("err = %v", err)
	}
}

func TestTransientFaultsWhileWaitingAreAbsorbed(t *testing.T) {
	f := newFixture(t, 50*time.Millisecond, 50*time.Millisecond)
	id := f.start(t, "success")
	f.sim.InjectFault(&ghsim.Fault{Route: "get-run", Status: 502, Times: 2})
	f.sim.InjectFault(&ghsim.Fault{Route: "get-run", Drop: true, Times: 1})
	st, err := (&Checker{}).Wait(context.Background(), f.client, id, Options{Expected: "success", PollInterval: 20 * time.Millisecond})
	if err != nil || st.Outcome != Succeeded {
		t.Fatalf("%+v, %v", st, err)
	}
}

func TestStoppingEarlyLeavesTheRunAndSaysSo(t *testing.T) {
	f := newFixture(t, time.Hour, 0)
	id := f.start(t, "success")
	interrupted := errors.New("interrupted")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(interrupted) })
	st, err := (&Checker{}).Wait(ctx, f.client, id, Options{PollInterval: 20 * time.Millisecond})
	if err == nil || failure.IsFinal(err) || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "it was queued") {
		t.Fatalf("err = %v", err)
	}
	if st == nil || st.Outcome != Running {
		t.Fatalf("last status %+v", st)
	}
}
