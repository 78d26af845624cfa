package ghsim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// epoch is where the fake clocks of these tests start: far from the wall
// clock, so that any time the simulator took from the wall clock shows.
var epoch = time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)

// rawClient talks to sim without the project's client, so that the test
// sees the headers as sent; h2 selects HTTP/2, else HTTP/1.1.
type rawClient struct {
	t    *testing.T
	sim  *ghsim.Server
	http *http.Client
}

func newRawClient(t *testing.T, sim *ghsim.Server, h2 bool) *rawClient {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.RootCAs()}, DialContext: sim.DialContext, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &rawClient{t: t, sim: sim, http: &http.Client{Transport: tr}}
}

// do sends a request to api.github.com and decodes a JSON answer into out
// (when not nil).
func (c *rawClient) do(method, path string, body any, out any) *http.Response {
	c.t.Helper()
	var rd bytes.Buffer
	if body != nil {
		_ = json.NewEncoder(&rd).Encode(body)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, "https://api.github.com"+path, &rd)
	req.Header.Set("Authorization", "Bearer ghp_clock")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			c.t.Fatalf("%s %s: %d, %v", method, path, resp.StatusCode, err)
		}
	}
	return resp
}

type runList struct {
	Total int `json:"total_count"`
	Runs  []struct {
		ID        int64  `json:"id"`
		Status    string `json:"status"`
		CreatedAt string `json:"created_at"`
	} `json:"workflow_runs"`
}

func (c *rawClient) list() (runList, *http.Response) {
	c.t.Helper()
	var l runList
	resp := c.do(http.MethodGet, "/repos/myorg/my-app/actions/runs", nil, &l)
	return l, resp
}

func clockSim(t *testing.T, opts ghsim.Options) *ghsim.Server {
	t.Helper()
	sim, err := ghsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	repo := sim.AddRepo("myorg", "my-app")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml"})
	sim.AddToken("ghp_clock", "octocat", false)
	return sim
}

func wantDate(t *testing.T, resp *http.Response, want time.Time) {
	t.Helper()
	if got := resp.Header.Get("Date"); got != want.UTC().Format(http.TimeFormat) {
		t.Fatalf("Date %q, want %s", got, want.UTC().Format(http.TimeFormat))
	}
}

// On a fake clock a run with RunDelay 10s stays out of listings until the
// clock has moved 10s, then goes queued, in_progress, completed as the
// clock moves, and every answer's Date is the clock's: minutes of the
// simulator's time in milliseconds of the test's.
func TestFakeClockDrivesRunsAndTheDateHeader(t *testing.T) {
	began := time.Now()
	fake := clock.NewFake(epoch)
	sim := clockSim(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 10 * time.Second, QueuedFor: time.Minute, RunFor: 5 * time.Minute, Clock: fake})
	c := newRawClient(t, sim, true)
	resp := c.do(http.MethodPost, "/repos/myorg/my-app/actions/workflows/deploy.yml/dispatches", map[string]any{"ref": "main"}, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("dispatch: %d", resp.StatusCode)
	}
	wantDate(t, resp, epoch)
	fake.Advance(10*time.Second - time.Millisecond)
	if l, resp := c.list(); l.Total != 0 {
		t.Fatalf("the run is listed %s before its RunDelay has passed: %+v", time.Millisecond, l)
	} else {
		wantDate(t, resp, fake.Now())
	}
	for _, step := range []struct {
		advance time.Duration
		status  string
	}{{time.Millisecond, "queued"}, {time.Minute, "in_progress"}, {5 * time.Minute, "completed"}} {
		fake.Advance(step.advance)
		l, resp := c.list()
		if l.Total != 1 || l.Runs[0].Status != step.status || l.Runs[0].CreatedAt != epoch.Add(10*time.Second).Format(time.RFC3339) {
			t.Fatalf("at %s: %+v, want one %s run created at %s", fake.Now(), l, step.status, epoch.Add(10*time.Second))
		}
		wantDate(t, resp, fake.Now())
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("the test took %s of wall-clock time for 6 minutes of the simulator's", took)
	}
}

// A dispatch answered with run details waits until the run exists, on the
// simulator's clock: a fake clock moves there at once, so the answer is
// immediate and names a run that can be read.
func TestRunDetailsAnswerWaitsOnTheFakeClock(t *testing.T) {
	fake := clock.NewFake(epoch)
	sim := clockSim(t, ghsim.Options{RunDelay: time.Hour, Clock: fake})
	c := newRawClient(t, sim, true)
	began := time.Now()
	var answer struct {
		ID int64 `json:"workflow_run_id"`
	}
	resp := c.do(http.MethodPost, "/repos/myorg/my-app/actions/workflows/deploy.yml/dispatches", map[string]any{"ref": "main", "return_run_details": true}, &answer)
	if resp.StatusCode != http.StatusOK || answer.ID == 0 || time.Since(began) > 5*time.Second {
		t.Fatalf("dispatch: %d, %+v after %s", resp.StatusCode, answer, time.Since(began))
	}
	if !fake.Now().Equal(epoch.Add(time.Hour)) {
		t.Fatalf("clock at %s, want %s (the RunDelay slept on it)", fake.Now(), epoch.Add(time.Hour))
	}
	wantDate(t, resp, epoch.Add(time.Hour))
	var run struct {
		Number int `json:"run_number"`
	}
	if resp := c.do(http.MethodGet, fmt.Sprintf("/repos/myorg/my-app/actions/runs/%d", answer.ID), nil, &run); resp.StatusCode != http.StatusOK || run.Number != 1 {
		t.Fatalf("the run named in the answer reads %d, run_number %d (want 1: the workflow's first run)", resp.StatusCode, run.Number)
	}
}

// DateSkew moves the Date header and nothing else; NoDate sends none,
// over HTTP/1.1 and HTTP/2 alike (net/http adds its own unless told not).
func TestDateSkewAndNoDate(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprint("h2=", h2), func(t *testing.T) {
			fake := clock.NewFake(epoch)
			skewed := clockSim(t, ghsim.Options{Clock: fake, DateSkew: -time.Hour})
			skewed.CreateRun(skewed.Repo("myorg", "my-app"), "deploy.yml", "main", "octocat", nil, 0)
			c := newRawClient(t, skewed, h2)
			l, resp := c.list()
			if want := h2; (resp.ProtoMajor == 2) != want {
				t.Fatalf("protocol %s", resp.Proto)
			}
			wantDate(t, resp, epoch.Add(-time.Hour))
			if l.Total != 1 || l.Runs[0].CreatedAt != epoch.Format(time.RFC3339) {
				t.Fatalf("created_at moved with the Date header: %+v", l)
			}

			none := clockSim(t, ghsim.Options{Clock: fake, NoDate: true})
			for _, path := range []string{"/repos/myorg/my-app/actions/runs", "/no/such/route"} {
				if resp := newRawClient(t, none, h2).do(http.MethodGet, path, nil, nil); len(resp.Header.Values("Date")) != 0 {
					t.Fatalf("GET %s: Date %q with NoDate", path, resp.Header.Values("Date"))
				}
			}
		})
	}
}

// The App JWT is judged, and the installation token expires, on the
// simulator's clock; so does the hourly rate-limit window.
func TestTokensAndRateLimitsRunOnTheClock(t *testing.T) {
	fake := clock.NewFake(epoch)
	sim := clockSim(t, ghsim.Options{Clock: fake, RateLimit: 1})
	key, err := rsa.GenerateKey(rand.Reader, 1024) // small: only this test trusts it
	if err != nil {
		t.Fatal(err)
	}
	sim.AddApp(&ghsim.App{ID: 99, ClientID: "Iv23liClock", PublicKey: &key.PublicKey, Installations: map[int64][]string{5: {"myorg/my-app"}}})
	c := newRawClient(t, sim, true)
	exchange := func(issued time.Time) (string, int) {
		t.Helper()
		jwtTok, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{Issuer: "Iv23liClock",
			IssuedAt: jwt.NewNumericDate(issued), ExpiresAt: jwt.NewNumericDate(issued.Add(9 * time.Minute))}).SignedString(key)
		req, _ := http.NewRequest(http.MethodPost, "https://api.github.com/app/installations/5/access_tokens", nil)
		req.Header.Set("Authorization", "Bearer "+jwtTok)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Token string `json:"token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return out.Token, resp.StatusCode
	}
	get := func(tok string) int {
		req, _ := http.NewRequest(http.MethodGet, "https://api.github.com/repos/myorg/my-app/actions/runs", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if a, b := get("ghp_clock"), get("ghp_clock"); a != http.StatusOK || b != http.StatusForbidden {
		t.Fatalf("with a limit of 1: %d then %d, want 200 then 403", a, b)
	}
	fake.Advance(time.Hour + time.Second)
	if got := get("ghp_clock"); got != http.StatusOK {
		t.Fatalf("in the next rate-limit window: %d", got)
	}
	if _, status := exchange(time.Now()); status != http.StatusUnauthorized {
		t.Fatalf("a JWT issued on the wall clock, years before the simulator's, was answered %d", status)
	}
	tok, status := exchange(fake.Now())
	if status != http.StatusCreated || get(tok) != http.StatusOK {
		t.Fatalf("a JWT issued on the simulator's clock was answered %d, or its token refused", status)
	}
	fake.Advance(time.Hour + time.Second)
	if got := get(tok); got != http.StatusUnauthorized {
		t.Fatalf("an hour-old installation token: %d, want 401", got)
	}
}
