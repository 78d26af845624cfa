package dispatch

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// advance drives s with d until it is done, moving the fake clock by each
// step's pause, and calls between(elapsed) before every call.
func (f *fixture) advance(t *testing.T, d *Dispatcher, c *ghclient.Client, r Request, s *State, between func(time.Duration)) error {
	t.Helper()
	start := f.clock.Now()
	for i := 0; i < 10000; i++ {
		if between != nil {
			between(f.clock.Now().Sub(start))
		}
		step, err := d.Advance(context.Background(), c, r, s)
		if err != nil || s.Done() {
			return err
		}
		f.clock.Advance(max(step.Wait, 10*time.Millisecond))
	}
	t.Fatal("the dispatch never ended")
	return nil
}

// once calls fn the first time cond holds.
func once(cond func() bool, fn func()) func(time.Duration) {
	done := false
	return func(time.Duration) {
		if !done && cond() {
			done = true
			fn()
		}
	}
}

func (f *fixture) keyedWorkflow() {
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "keyed.yml", Inputs: []string{"nonce", "dispatch_key"}, RunName: "Deploy ${{ inputs.dispatch_key }}"})
}

func keyedReq(nonce string) Request {
	return Request{WorkflowFile: "keyed.yml", Ref: "main", Inputs: map[string]string{"nonce": nonce}, CorrelationInput: "dispatch_key", Timeout: time.Minute}
}

func amb(t *testing.T, err error, reason Reason) *AmbiguousError {
	t.Helper()
	var a *AmbiguousError
	if !errors.As(err, &a) || a.Reason != reason || !failure.IsFinal(err) {
		t.Fatalf("err = %v, want a refusal (%s)", err, reason)
	}
	for _, c := range a.Candidates {
		if !strings.Contains(err.Error(), fmt.Sprint(c.ID)) {
			t.Errorf("the refusal does not name run %d: %v", c.ID, err)
		}
	}
	return a
}

// Without a key, another dispatcher's run that appears before ours (ours
// slow) is seen together with ours before anything is taken: refused.
func TestSlowRunAndAnotherDispatchersAreRefusedTogether(t *testing.T) {
	t.Parallel()
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerNoContent, ghsim.AnswerGHES320} {
		for _, ours := range []time.Duration{6 * time.Second, 9 * time.Second} {
			t.Run(fmt.Sprintf("answer %d, ours after %s", answer, ours), func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, ghsim.Options{Answer: answer, RunDelay: ours})
				d, c, r := f.dispatcher(), f.ghesClient(t), req("mine")
				s := d.Record(r, "", false)
				foreign := once(func() bool { return s.Phase == PhaseSent }, func() {
					f.sim.CreateRun(f.repo, "deploy.yml", "main", "octocat", map[string]any{"nonce": "theirs"}, 1600*time.Millisecond)
				})
				err := f.advance(t, d, c, r, s, foreign)
				if a := amb(t, err, ReasonSeveral); len(a.Candidates) != 2 {
					t.Fatalf("candidates %+v", a.Candidates)
				}
				if st := f.sim.Stats(); st.Dispatches != 1 {
					t.Fatalf("%d dispatches", st.Dispatches)
				}
			})
		}
	}
}

func TestAnotherUsersRunIsNotACandidate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 2 * time.Second})
	d, c, r := f.dispatcher(), f.ghesClient(t), req("mine")
	s := d.Record(r, "", false)
	err := f.advance(t, d, c, r, s, once(func() bool { return s.Phase == PhaseSent }, func() {
		f.sim.CreateRun(f.repo, "deploy.yml", "main", "someone-else", map[string]any{"nonce": "theirs"}, time.Second)
	}))
	if err != nil || f.runInputs(t, s.Run.ID)["nonce"] != "mine" || s.Run.Method != ByRunListing {
		t.Fatalf("%+v, %v", s.Run, err)
	}
	if n := f.sim.Stats().ByRoute["user"]; n != 1 {
		t.Fatalf("%d GET /user, want 1", n)
	}
}

// A server whose clock cannot be believed gets no listing attribution.
func TestUntrustworthyServerClockIsRefused(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]ghsim.Options{
		"Date 2 min behind created_at": {Answer: ghsim.AnswerNoContent, RunDelay: time.Second, DateSkew: -2 * time.Minute},
		"no Date at all":               {Answer: ghsim.AnswerNoContent, RunDelay: time.Second, NoDate: true},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, opts)
			_, err := dispatch(f.dispatcher(), f.ghesClient(t), req("mine"))
			amb(t, err, ReasonClock)
			if !strings.Contains(err.Error(), "correlationInput") {
				t.Fatalf("the refusal does not say how to make attribution exact: %v", err)
			}
			// With a key, the clock does not matter.
			f.keyedWorkflow()
			res, err := dispatch(f.dispatcher(), f.ghesClient(t), keyedReq("keyed"))
			if err != nil || f.runInputs(t, res.ID)["nonce"] != "keyed" {
				t.Fatalf("with a key: %+v, %v", res, err)
			}
		})
	}
}

// The same key is the same dispatch: a second dispatch with it sends
// nothing and reports the first's run.
func TestTheSameKeyIsTheSameDispatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: time.Second})
	f.keyedWorkflow()
	c := f.ghesClient(t)
	first, err := f.dispatcher().Dispatch(context.Background(), c, keyedReq("first"), "deploy-v1.2")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	again, err := f.dispatcher().Dispatch(context.Background(), c, keyedReq("second"), "deploy-v1.2")
	if err != nil || again.ID != first.ID || again.Method != ByEarlierDispatch {
		t.Fatalf("second dispatch with the same key: %+v, %v (first %+v)", again, err, first)
	}
	if st := f.sim.Stats(); st.Dispatches != 1 {
		t.Fatalf("%d dispatches for one key", st.Dispatches)
	}
	// A longer key is another key.
	other, err := f.dispatcher().Dispatch(context.Background(), c, keyedReq("third"), "deploy-v1.2.3")
	if err != nil || other.ID == first.ID || f.runInputs(t, other.ID)["nonce"] != "third" {
		t.Fatalf("deploy-v1.2.3: %+v, %v", other, err)
	}
}

// keyedDispatch is one dispatcher's dispatch with a key the caller chose.
type keyedDispatch struct {
	d *Dispatcher
	r Request
	s *State
}

// twoWithOneKey records two dispatches in two dispatchers (two processes)
// with one key, and has both look the key up (nothing carries it yet).
func (f *fixture) twoWithOneKey(t *testing.T, c *ghclient.Client, key string) [2]keyedDispatch {
	t.Helper()
	var out [2]keyedDispatch
	for i, nonce := range []string{"a", "b"} {
		d, r := f.dispatcher(), keyedReq(nonce)
		out[i] = keyedDispatch{d: d, r: r, s: d.Record(r, key, true)}
		if _, err := d.Advance(context.Background(), c, r, out[i].s); err != nil || out[i].s.KeyCheckedAt.IsZero() {
			t.Fatalf("key look-up: %v", err)
		}
	}
	return out
}

// Two dispatches with one key at once (the second sent before the first's
// run is listed, or the first's answer lost before GitHub acted): at most
// one takes a run, and never the other's.
func TestOneKeyTwiceAtOnceNeverTakesTheOthersRun(t *testing.T) {
	t.Parallel()
	for _, firstLost := range []bool{false, true} {
		t.Run(fmt.Sprint("first answer lost ", firstLost), func(t *testing.T) {
			f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 3 * time.Second})
			f.keyedWorkflow()
			c := f.ghesClient(t)
			two := f.twoWithOneKey(t, c, "deploy-v1.2")
			if firstLost {
				f.sim.InjectFault(&ghsim.Fault{Route: "dispatch", Status: 502, Times: 1}) // nothing dispatched
			}
			for _, x := range two { // both send
				if _, err := x.d.Advance(context.Background(), c, x.r, x.s); err != nil || x.s.Phase == PhaseRecorded {
					t.Fatalf("send: %v, phase %s", err, x.s.Phase)
				}
			}
			took := 0
			for i, x := range two {
				err := f.advance(t, x.d, c, x.r, x.s, nil)
				if err == nil {
					took++
					if got, want := f.runInputs(t, x.s.Run.ID)["nonce"], x.r.Inputs["nonce"]; got != want {
						t.Fatalf("dispatch %d took the run of dispatch %v", i, got)
					}
					continue
				}
				var a *AmbiguousError
				if !errors.As(err, &a) {
					t.Fatalf("dispatch %d: %v, want a refusal", i, err)
				}
			}
			if took > 1 {
				t.Fatalf("%d dispatches took a run", took)
			}
		})
	}
}

// A dispatch recorded by a process that is gone is never sent; without a
// key, a run in its window is refused, naming it.
func TestRestartedDispatchIsNeverSentAndNeverGuesses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: time.Second})
	c, r := f.ghesClient(t), req("mine")
	saved := f.dispatcher().Record(r, "", false).Encode()
	s, err := Decode(saved)
	if err != nil {
		t.Fatal(err)
	}
	// Another dispatcher of the same workflow and ref dispatches meanwhile.
	f.sim.CreateRun(f.repo, "deploy.yml", "main", "octocat", map[string]any{"nonce": "theirs"}, 2*time.Second)
	err = f.advance(t, f.dispatcher(), c, r, s, nil)
	amb(t, err, ReasonUncertain)
	if !strings.Contains(err.Error(), "restart") || f.sim.Stats().ByRoute["dispatch"] != 0 {
		t.Fatalf("err = %v, stats %+v", err, f.sim.Stats())
	}
	// With nothing in its window, it says what may have happened.
	r.Timeout = 5 * time.Second
	f.clock.Advance(time.Minute) // the other dispatcher's run is long before this one
	s, _ = Decode(f.dispatcher().Record(r, "", false).Encode())
	err = f.advance(t, f.dispatcher(), c, r, s, nil)
	if err == nil || !strings.Contains(err.Error(), "may have been sent before a restart") || !strings.Contains(err.Error(), "/actions/workflows/deploy.yml") {
		t.Fatalf("err = %v", err)
	}
	// A sent state is never sent again either.
	b := f.dispatcher()
	s = b.Record(r, "", false)
	for s.Phase == PhaseRecorded {
		if _, err := b.Advance(context.Background(), c, r, s); err != nil {
			t.Fatal(err)
		}
	}
	if st := f.sim.Stats(); st.ByRoute["dispatch"] != 1 {
		t.Fatalf("%d POSTs, want 1", st.ByRoute["dispatch"])
	}
}

func TestCorrelationKeyWithoutRunNameSaysSo(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent})
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "plain.yml", Inputs: []string{"dispatch_key"}})
	r := Request{WorkflowFile: "plain.yml", Ref: "main", CorrelationInput: "dispatch_key", Timeout: 2 * time.Second}
	_, err := dispatch(f.dispatcher(), f.ghesClient(t), r)
	if err == nil || !failure.IsFinal(err) || !strings.Contains(err.Error(), "run-name must contain ${{ inputs.dispatch_key }}") {
		t.Fatalf("err = %v", err)
	}
}

func TestListingThatIgnoresItsFiltersIsNotBelieved(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, IgnoreListFilters: true, RunDelay: 300 * time.Millisecond})
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "other.yml"})
	f.sim.AddRef(f.repo, "feature")
	f.sim.CreateRun(f.repo, "other.yml", "main", "octocat", nil, 50*time.Millisecond)
	f.sim.CreateRun(f.repo, "deploy.yml", "feature", "octocat", nil, 50*time.Millisecond)
	res, err := dispatch(f.dispatcher(), f.ghesClient(t), req("mine"))
	if err != nil || f.runInputs(t, res.ID)["nonce"] != "mine" {
		t.Fatalf("%+v, %v", res, err)
	}
}

// A 403 or 429 that says "rate limit" only in its headers is a rate limit:
// nothing dispatched, never "needs actions:write".
func TestRateLimitIsJudgedByHeaders(t *testing.T) {
	t.Parallel()
	for _, status := range []int{403, 429} {
		f := newFixture(t, ghsim.Options{})
		f.sim.InjectFault(&ghsim.Fault{Route: "dispatch", SecondaryRateLimit: 30 * time.Second, Undocumented: true, Status: status, Times: 1})
		d, r := f.dispatcher(), req("x")
		s := d.Record(r, "", false)
		step, err := d.Advance(context.Background(), f.client(t, "https://github.com/myorg/my-app", credentials.Credentials{Token: token}), r, s)
		if err != nil || s.Phase != PhaseRecorded || step.Wait < 29*time.Second || strings.Contains(step.Message, "actions:write") {
			t.Fatalf("%d: %+v, %v, phase %s", status, step, err, s.Phase)
		}
	}
}

// A dispatch answer naming its run on another host, or with an ID that is
// not positive, is not believed as it stands.
func TestDispatchAnswerIsCheckedBeforeItIsBelieved(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body string }{
		{"URLs on another host", `{"workflow_run_id": 42, "run_url": "https://evil.example/repos/o/r/actions/runs/42\n", "html_url": "https://evil.example/o/r/actions/runs/42"}`},
		{"a run ID that is not positive", `{"workflow_run_id": -7, "run_url": "", "html_url": ""}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.Method == http.MethodPost {
					_, _ = w.Write([]byte(tc.body))
					return
				}
				_, _ = w.Write([]byte(`{"total_count":0,"workflow_runs":[]}`))
			}))
			defer srv.Close()
			roots := x509.NewCertPool()
			roots.AddCert(srv.Certificate())
			repo, _ := repourl.Parse(srv.URL+"/o/r", repourl.Options{})
			c, err := (&ghclient.Pool{RootCAs: roots}).Client(repo, credentials.Credentials{Token: token, Source: "test"}, false)
			if err != nil {
				t.Fatal(err)
			}
			d, r := &Dispatcher{}, Request{WorkflowFile: "deploy.yml", Ref: "main"}
			s := d.Record(r, "", false)
			_, err = d.Advance(context.Background(), c, r, s)
			if strings.Contains(tc.name, "not positive") {
				if s.Run != nil || err != nil || s.Phase != PhaseSent {
					t.Fatalf("run %+v taken from an answer with a bad ID (%v)", s.Run, err)
				}
				return
			}
			if err != nil || s.Run == nil || !strings.HasPrefix(s.Run.HTMLURL, srv.URL+"/o/r/actions/runs/42") || strings.ContainsAny(s.Run.URL, "\n") || strings.Contains(s.Run.URL, "evil") {
				t.Fatalf("%+v, %v", s.Run, err)
			}
		})
	}
}

// The user lookup is one try: when GET /user fails, runs are looked for
// without the filter, never held up.
func TestFailingUserLookupDoesNotHoldUpTheRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 200 * time.Millisecond})
	f.sim.InjectFault(&ghsim.Fault{Route: "user", Status: 503})
	res, err := dispatch(f.dispatcher(), f.ghesClient(t), req("mine"))
	if err != nil || f.runInputs(t, res.ID)["nonce"] != "mine" {
		t.Fatalf("%+v, %v", res, err)
	}
	if n := f.sim.Stats().ByRoute["user"]; n == 0 {
		t.Fatal("the user lookup was never tried, so its failure was not tested")
	}
}
