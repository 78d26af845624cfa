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

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/credentials"
	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/repourl"
)

// The attribution promises, one case each, against the simulator in the
// answer modes where GitHub does not name the run.
func TestAttributionNeverTakesAnotherDispatchersRun(t *testing.T) {
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerNoContent, ghsim.AnswerGHES320} {
		t.Run(fmt.Sprint("answer ", answer), func(t *testing.T) {
			t.Run("another user's run in the same window is not a candidate", func(t *testing.T) {
				f := newFixture(t, ghsim.Options{Answer: answer, RunDelay: 200 * time.Millisecond})
				go func() {
					time.Sleep(50 * time.Millisecond)
					f.sim.CreateRun(f.repo, "deploy.yml", "main", "someone-else", map[string]any{"nonce": "theirs"}, 0)
				}()
				res, err := run(newDispatcher(), f.ghesClient(t), req("mine"))
				if err != nil || f.runInputs(t, res.RunID)["nonce"] != "mine" {
					t.Fatalf("%+v, %v", res, err)
				}
				if n := f.sim.Stats().ByRoute["user"]; n != 1 {
					t.Fatalf("%d GET /user, want 1", n)
				}
			})
			t.Run("a run of the same user in the same window is refused, naming both", func(t *testing.T) {
				f := newFixture(t, ghsim.Options{Answer: answer, RunDelay: 200 * time.Millisecond})
				c := f.ghesClient(t)
				// Another dispatcher with the same credentials (another
				// process), its run created just after ours was sent.
				go func() {
					time.Sleep(50 * time.Millisecond)
					f.sim.CreateRun(f.repo, "deploy.yml", "main", "octocat", map[string]any{"nonce": "theirs"}, 0)
				}()
				_, err := run(newDispatcher(), c, req("mine"))
				var amb *AmbiguousError
				if !errors.As(err, &amb) || !failure.IsFinal(err) || len(amb.Candidates) != 2 {
					t.Fatalf("err = %v, want an ambiguity naming two runs", err)
				}
				for _, r := range f.sim.Runs(f.repo) {
					if !strings.Contains(err.Error(), fmt.Sprint(r.ID)) {
						t.Errorf("the refusal does not name run %d: %v", r.ID, err)
					}
				}
				if !strings.Contains(err.Error(), "correlationInput") {
					t.Errorf("the refusal does not say how to make attribution exact: %v", err)
				}
				if st := f.sim.Stats(); st.Dispatches != 1 {
					t.Fatalf("%d dispatches", st.Dispatches)
				}
			})
			t.Run("a run created before the dispatch is never a candidate", func(t *testing.T) {
				f := newFixture(t, ghsim.Options{Answer: answer, RunDelay: 200 * time.Millisecond})
				f.sim.CreateRun(f.repo, "deploy.yml", "main", "octocat", map[string]any{"nonce": "theirs"}, 0)
				// Two seconds earlier: created_at and Date have whole seconds,
				// so a run of the second before the dispatch is a candidate.
				time.Sleep(2100 * time.Millisecond)
				res, err := run(newDispatcher(), f.ghesClient(t), req("mine"))
				if err != nil || f.runInputs(t, res.RunID)["nonce"] != "mine" {
					t.Fatalf("%+v, %v", res, err)
				}
			})
			t.Run("the correlation key tells runs apart exactly", func(t *testing.T) {
				f := newFixture(t, ghsim.Options{Answer: answer, RunDelay: 200 * time.Millisecond})
				f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "keyed.yml", Inputs: []string{"nonce", "dispatch_key"}, RunName: "Deploy ${{ inputs.dispatch_key }}"})
				// Others dispatch the same workflow and ref at the same time:
				// one with another key, one without.
				go func() {
					f.sim.CreateRun(f.repo, "keyed.yml", "main", "someone-else", map[string]any{"dispatch_key": RandomKey()}, 100*time.Millisecond)
					f.sim.CreateRun(f.repo, "keyed.yml", "main", "someone-else", nil, 150*time.Millisecond)
				}()
				r := Request{WorkflowFile: "keyed.yml", Ref: "main", Inputs: map[string]string{"nonce": "mine"}, CorrelationInput: "dispatch_key"}
				res, err := newDispatcher().Dispatch(context.Background(), f.ghesClient(t), r, "", 20*time.Second)
				if err != nil || res.Method != ByCorrelationKey || f.runInputs(t, res.RunID)["nonce"] != "mine" {
					t.Fatalf("%+v, %v", res, err)
				}
			})
		})
	}
}

func TestCorrelationKeyWithoutRunNameSaysSo(t *testing.T) {
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent})
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "plain.yml", Inputs: []string{"dispatch_key"}})
	r := Request{WorkflowFile: "plain.yml", Ref: "main", CorrelationInput: "dispatch_key"}
	_, err := newDispatcher().Dispatch(context.Background(), f.ghesClient(t), r, "", 2*time.Second)
	if err == nil || !failure.IsFinal(err) || !strings.Contains(err.Error(), "run-name must contain ${{ inputs.dispatch_key }}") {
		t.Fatalf("err = %v", err)
	}
}

func TestListingThatIgnoresItsFiltersIsNotBelieved(t *testing.T) {
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, IgnoreListFilters: true, RunDelay: 300 * time.Millisecond})
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "other.yml"})
	f.sim.AddRef(f.repo, "feature")
	// Runs of another workflow and another branch appear in the window.
	f.sim.CreateRun(f.repo, "other.yml", "main", "someone-else", nil, 50*time.Millisecond)
	f.sim.CreateRun(f.repo, "deploy.yml", "feature", "someone-else", nil, 50*time.Millisecond)
	res, err := run(newDispatcher(), f.ghesClient(t), req("mine"))
	if err != nil || f.runInputs(t, res.RunID)["nonce"] != "mine" {
		t.Fatalf("%+v, %v", res, err)
	}
}

func TestAttemptFromAnotherProcessIsNeverSent(t *testing.T) {
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent})
	d := newDispatcher()
	// Read back from saved state after a restart: this process did not
	// record it, so the process that did may have sent it.
	a := &Attempt{ID: "from-a-dead-controller", IntentAt: time.Now()}
	if d.CanSend(a) {
		t.Fatal("an attempt this process did not record is sendable")
	}
	if err := d.Send(context.Background(), f.ghesClient(t), req("x"), a); err == nil || !failure.IsFinal(err) {
		t.Fatalf("err = %v", err)
	}
	// Sending twice is refused too.
	b := d.NewAttempt("")
	if err := d.Send(context.Background(), f.ghesClient(t), req("y"), b); err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), f.ghesClient(t), req("y"), b); err == nil || d.CanSend(b) {
		t.Fatalf("a sent attempt was sendable again: %v", err)
	}
	if st := f.sim.Stats(); st.ByRoute["dispatch"] != 1 {
		t.Fatalf("%d POSTs, want 1", st.ByRoute["dispatch"])
	}
}

// A 403 or 429 that says "rate limit" only in its headers is a rate limit:
// transient, nothing dispatched, never "needs actions:write".
func TestRateLimitIsJudgedByHeaders(t *testing.T) {
	for _, status := range []int{403, 429} {
		f := newFixture(t, ghsim.Options{})
		f.sim.InjectFault(&ghsim.Fault{Route: "dispatch", SecondaryRateLimit: 30 * time.Second, Undocumented: true, Status: status, Times: 1})
		d := newDispatcher()
		a := d.NewAttempt("")
		err := d.Send(context.Background(), f.client(t, "https://github.com/myorg/my-app", credentials.Credentials{Token: token}), req("x"), a)
		wait, ok := ghclient.RetryAfter(err)
		if err == nil || failure.IsFinal(err) || !ghclient.RateLimited(err) || a.MaybeSent || !ok || wait < 29*time.Second || strings.Contains(err.Error(), "actions:write") {
			t.Fatalf("%d: err = %v (retry after %s, maybe sent %t)", status, err, wait, a.MaybeSent)
		}
	}
}

// A dispatch answer naming its run on another host, with a newline, or
// with an ID that is not positive, is not believed as it stands.
func TestDispatchAnswerIsCheckedBeforeItIsBelieved(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		wantErr    bool
	}{
		{"URLs on another host", `{"workflow_run_id": 42, "run_url": "https://evil.example/repos/o/r/actions/runs/42\n", "html_url": "https://evil.example/o/r/actions/runs/42"}`, false},
		{"a run ID that is not positive", `{"workflow_run_id": -7, "run_url": "", "html_url": ""}`, true},
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
			d := newDispatcher()
			a := d.NewAttempt("")
			err = d.Send(context.Background(), c, Request{WorkflowFile: "deploy.yml", Ref: "main"}, a)
			if tc.wantErr {
				if a.Run != nil {
					t.Fatalf("run %+v taken from an answer with a bad ID", a.Run)
				}
				return
			}
			if err != nil || a.Run == nil || !strings.HasPrefix(a.Run.HTMLURL, srv.URL+"/o/r/actions/runs/42") || strings.ContainsAny(a.Run.RunURL, "\n") || strings.Contains(a.Run.RunURL, "evil") {
				t.Fatalf("%+v, %v", a.Run, err)
			}
		})
	}
}

// The user lookup is one try: when GET /user fails, runs are looked for
// without the filter, never held up.
func TestFailingUserLookupDoesNotHoldUpTheRun(t *testing.T) {
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 200 * time.Millisecond})
	f.sim.InjectFault(&ghsim.Fault{Route: "user", Status: 503})
	res, err := run(newDispatcher(), f.ghesClient(t), req("mine"))
	if err != nil || f.runInputs(t, res.RunID)["nonce"] != "mine" {
		t.Fatalf("%+v, %v", res, err)
	}
}
