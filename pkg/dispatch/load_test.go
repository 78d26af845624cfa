package dispatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// TestLoadWithFaults: 1,000 concurrent dispatches of one workflow and ref
// in one process, with 5% of dispatches answered 5xx (half before GitHub
// acted, half after), 5% of listings failing, and a secondary rate limit.
// Every dispatch ends with exactly one run or a clear error, no run goes to
// two dispatches or to the wrong one, no goroutine is left behind, and the
// heap stays bounded.
func TestLoadWithFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 dispatches")
	}
	n := 100 // CI's setting; KARGO_GHA_LOAD=1000 for the documented run
	if v, err := strconv.Atoi(os.Getenv("KARGO_GHA_LOAD")); err == nil && v > 0 {
		n = v
	}
	baseGoroutines := runtime.NumGoroutine()
	// The real clock: a fake one moves with every sleeper's pause, and a
	// thousand of them would run the dispatches' budgets out at once.
	f := newFixture(t, ghsim.Options{Clock: clock.System{}, RunDelay: 0})
	for _, fault := range []*ghsim.Fault{
		{Route: "dispatch", Status: 502, Probability: 0.01},
		{Route: "dispatch", Status: 503, AfterAction: true, Probability: 0.025},
		{Route: "dispatch", SecondaryRateLimit: time.Second, Probability: 0.01},
		{Route: "list-runs", Status: 502, Probability: 0.05},
	} {
		f.sim.InjectFault(fault)
	}
	c := f.client(t, "https://github.com/myorg/my-app", credentials.Credentials{Token: token})
	// Lost answers before GitHub acted never get a run: they fail after
	// the timeout.
	d := f.dispatcher()

	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	start := time.Now()
	results := make([]*Run, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Dispatches of one workflow and ref go out one at a time; the
			// last of 1,000 waits for the 999 before it (and, under -race,
			// each takes about 100 ms), and for the holds.
			r := req(fmt.Sprint(i))
			r.Timeout = 3 * time.Second
			results[i], errs[i] = d.Dispatch(context.Background(), c, r, "")
		}(i)
	}
	wg.Wait()
	close(stop)
	elapsed := time.Since(start)

	claimed := map[int64]int{}
	failed := 0
	kinds := map[string]int{}
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			failed++
			kinds[errorKind(errs[i])]++
			var de *Error
			var fe *failure.Error
			if !errors.As(errs[i], &de) && !errors.As(errs[i], &fe) || errs[i].Error() == "" {
				t.Errorf("dispatch %d: unclassified error %v", i, errs[i])
			}
			continue
		}
		if prev, dup := claimed[results[i].ID]; dup {
			t.Fatalf("run %d claimed by dispatches %d and %d", results[i].ID, prev, i)
		}
		claimed[results[i].ID] = i
		if got := f.runInputs(t, results[i].ID)["nonce"]; got != fmt.Sprint(i) {
			t.Errorf("dispatch %d got the run of dispatch %v", i, got)
		}
	}
	runsPerNonce := map[any]int{}
	for _, r := range f.sim.Runs(f.repo) {
		runsPerNonce[r.Inputs["nonce"]]++
	}
	for nonce, count := range runsPerNonce {
		if count > 1 {
			t.Errorf("dispatch %v created %d runs", nonce, count)
		}
	}
	t.Logf("errors by kind: %v", kinds)
	st := f.sim.Stats()
	t.Logf("%d dispatches in %s: %d ok, %d clear errors; %d runs; %d requests (%d POSTs); peak heap in use %d MiB",
		n, elapsed.Round(time.Millisecond), n-failed, failed, len(f.sim.Runs(f.repo)), st.Requests, st.ByRoute["dispatch"], peak.Load()>>20)
	// Only dispatches whose answer was lost may fail (about 3.5 %, 12 at
	// most in the small CI setting, where chance weighs more): they
	// are never sent again, and without a key their run cannot be told
	// from another dispatcher's.
	if other := failed - kinds["no run appeared (answer lost before GitHub acted)"] - kinds["answer lost"]; other > 0 || failed > max(n/20, 12) {
		t.Errorf("%d of %d dispatches failed (%v); only lost answers may", failed, n, kinds)
	}
	if peak.Load() > 512<<20 {
		t.Errorf("peak heap in use %d MiB", peak.Load()>>20)
	}

	// No goroutine outlives the work.
	f.pool.CloseIdleConnections()
	f.sim.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseGoroutines+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > baseGoroutines+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines left (started with %d):\n%s", g, baseGoroutines, buf[:runtime.Stack(buf, true)])
	}
}

// errorKind names an error's kind for the load test's summary.
func errorKind(err error) string {
	var amb *AmbiguousError
	switch msg := err.Error(); {
	case errors.As(err, &amb) && amb.Reason == ReasonUncertain:
		return "answer lost"
	case errors.As(err, &amb):
		return "ambiguous"
	case strings.Contains(msg, "did not appear"), strings.Contains(msg, "no run of it appeared"):
		return "no run appeared (answer lost before GitHub acted)"
	case strings.Contains(msg, "rate limit"):
		return "rate limited"
	default:
		return msg
	}
}
