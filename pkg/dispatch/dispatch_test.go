package dispatch

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

const token = "ghp_test_token_0123456789"

type fixture struct {
	sim  *ghsim.Server
	repo *ghsim.Repo
	pool *ghclient.Pool
	// clock is the fake clock the simulator and the dispatchers share,
	// unless the test gave the simulator another (clk).
	clock *clock.Fake
	clk   clock.Clock
}

// newFixture starts a simulator on a fake clock shared with the
// dispatchers the test makes (f.dispatcher), so that a test of a minute's
// dispatch takes milliseconds.
func newFixture(t *testing.T, opts ghsim.Options) *fixture {
	t.Helper()
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	if opts.Clock == nil {
		opts.Clock = fake
	}
	clk := opts.Clock
	sim, pool := simtest.Start(t, opts)
	repo := sim.AddRepo("myorg", "my-app")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"environment", "nonce"}, TriggerRefs: []string{"main"}})
	sim.AddRef(repo, "old-branch")
	sim.AddToken(token, "octocat", false)
	sim.AddToken("ghp_read_only", "reader", true)
	return &fixture{sim: sim, repo: repo, pool: pool, clock: fake, clk: clk}
}

func (f *fixture) client(t *testing.T, repoURL string, creds credentials.Credentials) *ghclient.Client {
	t.Helper()
	repo, err := repourl.Parse(repoURL, repourl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if creds.Source == "" {
		creds.Source = "test"
	}
	c, err := f.pool.Client(repo, creds, false)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) ghesClient(t *testing.T) *ghclient.Client {
	return f.client(t, f.sim.RepoURL("myorg", "my-app"), credentials.Credentials{Token: token})
}

// runInputs returns what the simulator recorded for a run: which dispatch made it.
func (f *fixture) runInputs(t *testing.T, id int64) map[string]any {
	t.Helper()
	for _, r := range f.sim.Runs(f.repo) {
		if r.ID == id {
			return r.Inputs
		}
	}
	t.Fatalf("run %d does not exist in the simulator", id)
	return nil
}

func req(nonce string) Request {
	return Request{WorkflowFile: "deploy.yml", Ref: "main", Inputs: map[string]string{"environment": "prod", "nonce": nonce}}
}

func (f *fixture) dispatcher() *Dispatcher { return &Dispatcher{Clock: f.clk} }

// dispatch dispatches and waits up to 60 s (of the fake clock) for the run.
func dispatch(d *Dispatcher, c *ghclient.Client, r Request) (*Run, error) {
	if r.Timeout == 0 {
		r.Timeout = 60 * time.Second
	}
	return d.Dispatch(context.Background(), c, r, "")
}

func TestRunDetailsTakeOneCountedRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerRunDetails, RunDelay: 100 * time.Millisecond})
	// api.github.com is routed to the simulator with real TLS verification.
	c := f.client(t, "https://github.com/myorg/my-app", credentials.Credentials{Token: token})
	res, err := dispatch(f.dispatcher(), c, req("a"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != ByRunDetails || f.runInputs(t, res.ID)["nonce"] != "a" {
		t.Fatalf("result %+v", res)
	}
	if !strings.HasPrefix(res.HTMLURL, "https://github.com/myorg/my-app/actions/runs/") {
		t.Fatalf("html URL %q", res.HTMLURL)
	}
	if st := f.sim.Stats(); st.Requests != 1 || st.Counted != 1 || st.Dispatches != 1 {
		t.Fatalf("stats %+v, want exactly one counted request", st)
	}
}

func TestNoContentAnswerFindsTheNewRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 300 * time.Millisecond})
	c := f.ghesClient(t)
	d := f.dispatcher()
	// Someone else's run of the same workflow and ref, a moment earlier
	// (in an earlier second: created_at has whole seconds).
	if _, err := dispatch(f.dispatcher(), c, req("earlier")); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(1100 * time.Millisecond)
	res, err := dispatch(d, c, req("mine"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != ByRunListing || f.runInputs(t, res.ID)["nonce"] != "mine" {
		t.Fatalf("got run %d (%v), want the run with nonce mine", res.ID, f.runInputs(t, res.ID))
	}
	if st := f.sim.Stats(); st.Dispatches != 2 {
		t.Fatalf("dispatches %d", st.Dispatches)
	}
}

func TestOldEnterpriseServerRefusingRunDetails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerGHES320, RunDelay: 200 * time.Millisecond})
	c := f.ghesClient(t)
	d := f.dispatcher()
	for i, nonce := range []string{"first", "second"} {
		res, err := dispatch(d, c, req(nonce))
		if err != nil {
			t.Fatal(err)
		}
		if f.runInputs(t, res.ID)["nonce"] != nonce {
			t.Fatalf("dispatch %d got the wrong run", i)
		}
	}
	st := f.sim.Stats()
	// The 400 (return_run_details unknown; an Enterprise Server is asked
	// under 2022-11-28 first) does not dispatch; the host is remembered,
	// so only the first dispatch pays for the refused attempt.
	if st.Dispatches != 2 || st.ByRoute["dispatch"] != 3 {
		t.Fatalf("stats %+v, want 2 dispatches from 3 POSTs", st)
	}
}

func TestConcurrentDispatchesEachGetTheirOwnRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 500 * time.Millisecond})
	c := f.ghesClient(t)
	d := f.dispatcher()
	const n = 5
	results := make([]*Run, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := req(fmt.Sprint(i))
			r.Timeout = 5 * time.Minute // the fake clock moves with every dispatcher's pauses
			results[i], errs[i] = dispatch(d, c, r)
		}(i)
	}
	wg.Wait()
	seen := map[int64]int{}
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("dispatch %d: %v", i, errs[i])
		}
		if prev, dup := seen[results[i].ID]; dup {
			t.Fatalf("run %d handed to dispatches %d and %d", results[i].ID, prev, i)
		}
		seen[results[i].ID] = i
		if got := f.runInputs(t, results[i].ID)["nonce"]; got != fmt.Sprint(i) {
			t.Errorf("dispatch %d got the run of dispatch %v", i, got)
		}
	}
	if st := f.sim.Stats(); st.Dispatches != n {
		t.Fatalf("%d dispatches for %d requests", st.Dispatches, n)
	}
}

func TestRefusedDispatches(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{})
	tests := []struct {
		name  string
		token string
		req   Request
		want  []string
	}{
		{"missing workflow", token, Request{WorkflowFile: "nope.yml", Ref: "main"}, []string{"404", ".github/workflows/nope.yml", "credentials can see"}},
		{"no trigger at ref", token, Request{WorkflowFile: "deploy.yml", Ref: "old-branch"}, []string{"422", "Workflow does not have 'workflow_dispatch' trigger", "check the ref"}},
		{"undeclared input", token, Request{WorkflowFile: "deploy.yml", Ref: "main", Inputs: map[string]string{"color": "blue"}}, []string{"422", `Unexpected inputs provided: ["color"]`, "declare them"}},
		{"unknown ref", token, Request{WorkflowFile: "deploy.yml", Ref: "nope"}, []string{"422", "No ref found for: nope"}},
		{"bad credentials", "ghp_wrong", Request{WorkflowFile: "deploy.yml", Ref: "main"}, []string{"401", "credentials were rejected"}},
		{"read-only token", "ghp_read_only", Request{WorkflowFile: "deploy.yml", Ref: "main"}, []string{"403", "actions:write"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(t, f.sim.RepoURL("myorg", "my-app"), credentials.Credentials{Token: tt.token})
			_, err := dispatch(f.dispatcher(), c, tt.req)
			if err == nil || !failure.IsFinal(err) {
				t.Fatalf("err = %v, want a final error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
	if st := f.sim.Stats(); st.Dispatches != 0 {
		t.Fatalf("%d runs created by refused dispatches", st.Dispatches)
	}
}

func TestRunThatNeverAppearsTimesOutWithoutRedispatching(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: time.Hour})
	r := req("slow")
	r.Timeout = time.Second
	_, err := dispatch(f.dispatcher(), f.ghesClient(t), r)
	if err == nil || !failure.IsFinal(err) || !strings.Contains(err.Error(), "within 1s") || !strings.Contains(err.Error(), "before dispatching again") {
		t.Fatalf("err = %v", err)
	}
	if st := f.sim.Stats(); st.Dispatches != 1 {
		t.Fatalf("dispatches %d, want 1", st.Dispatches)
	}
}

// A dispatch whose answer was lost after GitHub acted: never sent again.
// Without a key its run cannot be told from another dispatcher's, so the
// step refuses and names it; with a key it is found.
func TestLostAnswerAfterGitHubActedIsNeverSentAgain(t *testing.T) {
	t.Parallel()
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerRunDetails, ghsim.AnswerNoContent} {
		f := newFixture(t, ghsim.Options{Answer: answer, RunDelay: 200 * time.Millisecond})
		f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "keyed.yml", Inputs: []string{"nonce", "dispatch_key"}, RunName: "Deploy ${{ inputs.dispatch_key }}"})
		f.sim.InjectFault(&ghsim.Fault{Route: "dispatch", Status: 502, AfterAction: true, Times: 2})
		_, err := dispatch(f.dispatcher(), f.ghesClient(t), req("x"))
		var amb *AmbiguousError
		if !errors.As(err, &amb) || len(amb.Candidates) != 1 || !strings.Contains(err.Error(), "answer was lost") || !strings.Contains(err.Error(), fmt.Sprint(amb.Candidates[0].ID)) {
			t.Fatalf("answer %d without a key: %v", answer, err)
		}
		keyed := Request{WorkflowFile: "keyed.yml", Ref: "main", Inputs: map[string]string{"nonce": "y"}, CorrelationInput: "dispatch_key"}
		res, err := dispatch(f.dispatcher(), f.ghesClient(t), keyed)
		if err != nil || f.runInputs(t, res.ID)["nonce"] != "y" || res.Method != ByCorrelationKey {
			t.Fatalf("answer %d with a key: %+v, %v", answer, res, err)
		}
		if st := f.sim.Stats(); st.Dispatches != 2 || st.ByRoute["dispatch"] != 2 {
			t.Fatalf("answer %d: stats %+v: dispatched again", answer, st)
		}
	}
}

// A dispatch whose answer was lost may have started a run: it is never sent
// again, even when no run appears; the error says what may exist and where.
func TestLostAnswerBeforeGitHubActedIsNeverSentAgain(t *testing.T) {
	t.Parallel()
	for _, fault := range []*ghsim.Fault{{Route: "dispatch", Status: 502, Times: 1}, {Route: "dispatch", Drop: true, Times: 1}} {
		f := newFixture(t, ghsim.Options{RunDelay: 100 * time.Millisecond})
		f.sim.InjectFault(fault)
		r := req("y")
		r.Timeout = 2 * time.Second
		_, err := dispatch(f.dispatcher(), f.ghesClient(t), r)
		if err == nil || !failure.IsFinal(err) || !strings.Contains(err.Error(), "before dispatching again") || !strings.Contains(err.Error(), "/actions/workflows/deploy.yml") {
			t.Fatalf("err = %v", err)
		}
		if st := f.sim.Stats(); st.Dispatches != 0 || st.ByRoute["dispatch"] != 1 {
			t.Fatalf("stats %+v, want exactly one POST", st)
		}
	}
}

// A server that refuses connections past the transport's short retry is a
// wrong host or port (docs/reliability.md, "What is final"): final, and
// nothing was dispatched.
func TestServerRefusingConnectionsIsFinal(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{})
	url := f.sim.RepoURL("myorg", "my-app")
	f.sim.Close()
	_, err := dispatch(f.dispatcher(), f.client(t, url, credentials.Credentials{Token: token}), req("x"))
	if err == nil || !failure.IsFinal(err) || !strings.Contains(err.Error(), "nothing was dispatched") || strings.Contains(err.Error(), "retrying is safe") {
		t.Fatalf("err = %v, want final, nothing dispatched", err)
	}
}

func TestPrimaryRateLimitIsTransientWithReset(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{RateLimit: 1})
	c := f.client(t, "https://github.com/myorg/my-app", credentials.Credentials{Token: token})
	d := f.dispatcher()
	if _, err := dispatch(d, c, req("1")); err != nil {
		t.Fatal(err)
	}
	_, err := dispatch(d, c, req("2"))
	var fe *failure.Error
	if err == nil || failure.IsFinal(err) || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("err = %v", err)
	}
	if !asFailure(err, &fe) || fe.RetryAt.IsZero() {
		t.Fatalf("no reset time in %v", err)
	}
}

func asFailure(err error, fe **failure.Error) bool {
	for e := err; e != nil; {
		if x, ok := e.(*failure.Error); ok {
			*fe = x
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

func newApp(t *testing.T, f *fixture) credentials.Credentials {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f.sim.AddApp(&ghsim.App{ID: 123, ClientID: "Iv23liTestApp", PublicKey: &key.PublicKey, Installations: map[int64][]string{77: {"myorg/my-app"}}})
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return credentials.Credentials{App: &credentials.App{ClientID: "Iv23liTestApp", InstallationID: 77, PrivateKeyPEM: pemKey}, Source: "test app"}
}

func TestAppTokenIsExchangedOnceAndShared(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{})
	app := newApp(t, f)
	d := f.dispatcher()
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Every dispatch asks the pool for its client, as the steps do.
			_, err := dispatch(d, f.client(t, "https://github.com/myorg/my-app", app), req(fmt.Sprint(i)))
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := f.sim.Stats(); st.TokenExchanges != 1 || st.Dispatches != 30 {
		t.Fatalf("stats %+v, want one token exchange for 30 dispatches", st)
	}
}

func TestRevokedInstallationTokenIsReplacedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{})
	app := newApp(t, f)
	c := f.client(t, "https://github.com/myorg/my-app", app)
	if _, err := dispatch(f.dispatcher(), c, req("1")); err != nil {
		t.Fatal(err)
	}
	tok, _ := c.Tokens.Token(context.Background())
	f.sim.RevokeToken(tok)
	if _, err := dispatch(f.dispatcher(), c, req("2")); err != nil {
		t.Fatal(err)
	}
	if st := f.sim.Stats(); st.TokenExchanges != 2 || st.Dispatches != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAppWithoutAccessToTheRepository(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{})
	app := newApp(t, f)
	f.sim.AddRepo("myorg", "private")
	_, err := dispatch(f.dispatcher(), f.client(t, "https://github.com/myorg/private", app), req("1"))
	if err == nil || !failure.IsFinal(err) || !strings.Contains(err.Error(), "installation token") {
		t.Fatalf("err = %v", err)
	}
}

func TestInsecureSkipTLSVerifyTrustsAnyCertificate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{})
	repo, _ := repourl.Parse(f.sim.RepoURL("myorg", "my-app"), repourl.Options{})
	creds := credentials.Credentials{Token: token, Source: "test"}
	// A pool that does not know the simulator's CA.
	pool := &ghclient.Pool{}
	verified, _ := pool.Client(repo, creds, false)
	_, err := dispatch(f.dispatcher(), verified, req("1"))
	if err == nil || !failure.IsFinal(err) || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("verified TLS against an unknown CA: %v", err)
	}
	insecure, _ := pool.Client(repo, creds, true)
	if _, err := dispatch(f.dispatcher(), insecure, req("2")); err != nil {
		t.Fatalf("insecureSkipTLSVerify: %v", err)
	}
}

func TestSecondaryRateLimitIsWaitedOutWithinTheBudget(t *testing.T) {
	t.Parallel()
	// The real clock: go-github remembers a secondary limit's end on it.
	f := newFixture(t, ghsim.Options{Clock: clock.System{}})
	f.sim.InjectFault(&ghsim.Fault{Route: "dispatch", SecondaryRateLimit: time.Second, Times: 1})
	c := f.client(t, "https://github.com/myorg/my-app", credentials.Credentials{Token: token})
	start := time.Now()
	res, err := dispatch(f.dispatcher(), c, req("1"))
	if waited := time.Since(start); err != nil || res.ID == 0 || waited < time.Second {
		t.Fatalf("%+v, %v after %s", res, err, waited)
	}
	if st := f.sim.Stats(); st.Dispatches != 1 || st.ByRoute["dispatch"] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSecondaryRateLimitBeyondTheBudgetIsTransient(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{})
	f.sim.InjectFault(&ghsim.Fault{Route: "dispatch", SecondaryRateLimit: 10 * time.Minute, Times: 1})
	c := f.client(t, "https://github.com/myorg/my-app", credentials.Credentials{Token: token})
	start := time.Now()
	_, err := dispatch(f.dispatcher(), c, req("1"))
	var fe *failure.Error
	if err == nil || failure.IsFinal(err) || !strings.Contains(err.Error(), "secondary rate limit") || !asFailure(err, &fe) ||
		time.Until(fe.RetryAt) < 9*time.Minute || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
	if f.sim.Stats().Dispatches != 0 {
		t.Fatal("a rate-limited dispatch created a run")
	}
}

func TestDroppedListingsAreRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 300 * time.Millisecond})
	c := f.ghesClient(t)
	f.sim.InjectFault(&ghsim.Fault{Route: "list-runs", Drop: true, Times: 3})
	res, err := dispatch(f.dispatcher(), c, req("after-drops"))
	if err != nil {
		t.Fatalf("dropped listings were not absorbed: %v", err)
	}
	if f.runInputs(t, res.ID)["nonce"] != "after-drops" || f.sim.Stats().Dispatches != 1 {
		t.Fatalf("wrong run or extra dispatch: %+v", f.sim.Stats())
	}
}

// While GitHub fails every listing, the looks back off (1, 2, 4, 8 s
// between them, each listing already retried by the client) instead of
// listing every half second until the deadline; the run is still found
// once GitHub answers again.
func TestFailingListingsBackOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 300 * time.Millisecond})
	c := f.ghesClient(t)
	const failing = 12
	f.sim.InjectFault(&ghsim.Fault{Route: "list-runs", Status: 502, Times: failing})
	d := f.dispatcher()
	r := withTimeout(req("through-an-outage"))
	s := d.Record(r, "", false)
	var failedWaits []time.Duration
	for !s.Done() {
		step, err := d.Advance(context.Background(), c, r, s)
		if err != nil {
			t.Fatalf("after waits %v: %v", failedWaits, err)
		}
		if s.FindFailures > 0 {
			failedWaits = append(failedWaits, step.Wait)
			if want := min(backoff(s.FindFailures), maxFindBackoff); step.Wait < want {
				t.Fatalf("after %d failed listings the next look is in %s, want %s", s.FindFailures, step.Wait, want)
			}
		}
		f.clock.Advance(step.Wait)
	}
	if f.runInputs(t, s.Run.ID)["nonce"] != "through-an-outage" || s.FindFailures != 0 {
		t.Fatalf("run %+v, find failures %d", s.Run, s.FindFailures)
	}
	if len(failedWaits) < 2 || failedWaits[len(failedWaits)-1] <= failedWaits[0] {
		t.Fatalf("waits after failed listings %v: they do not grow", failedWaits)
	}
	t.Logf("waits after failed listings: %v (%d listing answers failed)", failedWaits, failing)
}
