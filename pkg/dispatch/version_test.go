package dispatch

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// posts records the dispatch requests a simulator saw: the API version
// each asked for, whether it carried return_run_details, and the status.
type posts struct {
	mu   sync.Mutex
	list []post
}

type post struct {
	version string
	field   bool
	status  int
}

func (p *posts) observe(e ghsim.Exchange) {
	if e.Route != "dispatch" {
		return
	}
	var body map[string]any
	_ = json.Unmarshal(e.RequestBody, &body)
	_, field := body["return_run_details"]
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, post{version: e.Header.Get("X-GitHub-Api-Version"), field: field, status: e.Status})
}

func (p *posts) take() []post {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.list
	p.list = nil
	return l
}

// Enterprise Servers (the simulator's hosts) serving only 2026-03-10, only
// 2022-11-28 (with run details), and GHES 3.20: each dispatch starts
// exactly one run and finds it; an Enterprise Server is asked under
// 2022-11-28 first (dispatchAPI), and a host's refusals are paid once per
// process.
func TestDispatchFindsTheRunOnEachAPIVersion(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		opts   ghsim.Options
		first  []post // the POSTs of the first dispatch
		method Method
		api    DispatchAPI
	}{
		{
			name:   "only 2026-03-10",
			opts:   ghsim.Options{APIVersions: []string{ghsim.APIVersion2026}},
			first:  []post{{"2022-11-28", true, 400}, {"2026-03-10", false, 200}},
			method: ByRunDetails, api: API2026,
		},
		{
			name:   "only 2022-11-28",
			opts:   ghsim.Options{APIVersions: []string{ghsim.APIVersion2022}},
			first:  []post{{"2022-11-28", true, 200}},
			method: ByRunDetails, api: API2022RunDetails,
		},
		{
			name:   "GHES 3.20",
			opts:   ghsim.Options{Answer: ghsim.AnswerGHES320},
			first:  []post{{"2022-11-28", true, 400}, {"2022-11-28", false, 204}},
			method: ByRunListing, api: API2022,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen posts
			tc.opts.RunDelay, tc.opts.Observe = 200*time.Millisecond, seen.observe
			f := newFixture(t, tc.opts)
			c := f.ghesClient(t)
			d := f.dispatcher()
			for i, nonce := range []string{"first", "second"} {
				before := f.sim.Stats().Dispatches
				s := d.Record(req(nonce), "", false)
				res, err := d.run(context.Background(), c, withTimeout(req(nonce)), s)
				if err != nil {
					t.Fatalf("dispatch %d: %v", i, err)
				}
				if res.Method != tc.method || f.runInputs(t, res.ID)["nonce"] != nonce {
					t.Fatalf("dispatch %d: run %+v (%v), want the run with nonce %s found by %s", i, res, f.runInputs(t, res.ID), nonce, tc.method)
				}
				if n := f.sim.Stats().Dispatches - before; n != 1 {
					t.Fatalf("dispatch %d started %d runs, want 1", i, n)
				}
				if s.DispatchAPI != tc.api {
					t.Fatalf("dispatch %d: state says %q, want %q", i, s.DispatchAPI, tc.api)
				}
				got, want := seen.take(), tc.first
				if i > 0 {
					want = tc.first[len(tc.first)-1:] // remembered: no probing
				}
				if !equalPosts(got, want) {
					t.Fatalf("dispatch %d POSTs %+v, want %+v", i, got, want)
				}
			}
		})
	}
}

// A 5xx or a lost answer on the first version may have been acted on: it
// is never a reason to send again, under any version.
func TestServerErrorOnTheNewestVersionNeverFallsBack(t *testing.T) {
	t.Parallel()
	for name, fault := range map[string]ghsim.Fault{"502": {Status: 502}, "502 after dispatching": {Status: 502, AfterAction: true}, "dropped connection": {Drop: true}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var seen posts
			f := newFixture(t, ghsim.Options{Observe: seen.observe})
			fault.Route, fault.Times = "dispatch", 1
			f.sim.InjectFault(&fault)
			d := f.dispatcher()
			r := req("x")
			r.Timeout = 20 * time.Second
			s := d.Record(r, "", false)
			_, _ = d.run(context.Background(), f.ghesClient(t), r, s)
			got := seen.take()
			if len(got) != 1 {
				t.Fatalf("POSTs %+v, want the first and nothing after it", got)
			}
			if s.DispatchAPI != "" {
				t.Fatalf("a lost answer taught the state %q", s.DispatchAPI)
			}
		})
	}
}

// Only a 400 naming the version or the field steps back.
func TestFallbackOnlyOnAnUnknownVersionOrField(t *testing.T) {
	t.Parallel()
	answer := func(status int, msg string) error {
		return &github.ErrorResponse{Response: &http.Response{StatusCode: status}, Message: msg}
	}
	cases := []struct {
		api  DispatchAPI
		err  error
		next DispatchAPI
		ok   bool
		// tried2026: 2026-03-10 was refused already in this dispatch.
		tried2026 bool
	}{
		{API2026, answer(400, "Unsupported 'X-GitHub-Api-Version' header: 2026-03-10. Supported versions are: 2022-11-28"), API2022RunDetails, true, false},
		{API2026, answer(400, "Problems parsing JSON"), API2026, false, false},
		{API2026, answer(422, "Unsupported API version"), API2026, false, false},
		{API2026, answer(500, "Unsupported API version"), API2026, false, false},
		{API2026, answer(400, "\"return_run_details\" is not a permitted key."), API2026, false, false},
		{API2022RunDetails, answer(400, "Invalid request.\n\n\"return_run_details\" is not a permitted key."), API2022, true, false},
		{API2022RunDetails, answer(502, "return_run_details"), API2022RunDetails, false, false},
		{API2022RunDetails, answer(400, "Unsupported API version"), API2026, true, false},
		{API2022RunDetails, answer(400, "Unsupported API version"), API2022RunDetails, false, true},
		{API2022, answer(400, "return_run_details is not a permitted key"), API2022, false, false},
		{API2026, nil, API2026, false, false},
	}
	for _, tc := range cases {
		next, ok := fallback(tc.api, tc.err, map[DispatchAPI]bool{tc.api: true, API2026: tc.tried2026})
		if next != tc.next || ok != tc.ok {
			t.Errorf("fallback(%s, %v) = %s, %t; want %s, %t", tc.api, tc.err, next, ok, tc.next, tc.ok)
		}
	}
}

// What a refusal taught is kept in the state: a dispatch refused for
// another reason (a rate limit) after stepping back resumes where it
// stopped, even when the process forgot the host.
func TestStateKeepsTheVersionAHostTook(t *testing.T) {
	t.Parallel()
	var seen posts
	f := newFixture(t, ghsim.Options{Answer: ghsim.AnswerGHES320, RunDelay: 200 * time.Millisecond, Observe: seen.observe})
	// The version refusal is answered before faults; Skip lets the
	// return_run_details refusal through, the third POST is rate limited.
	f.sim.InjectFault(&ghsim.Fault{Route: "dispatch", SecondaryRateLimit: time.Second, Skip: 1, Times: 1})
	c := f.ghesClient(t)
	d := f.dispatcher()
	s := d.Record(req("x"), "", false)
	if _, err := d.Advance(context.Background(), c, withTimeout(req("x")), s); err != nil {
		t.Fatal(err)
	}
	if s.DispatchAPI != API2022 || !s.MaySend() {
		t.Fatalf("state %+v after the rate limit, want dispatch API %q and still sendable", s, API2022)
	}
	saved, err := Decode(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	seen.take()
	d.mu.Lock()
	d.hosts = nil // the process forgot the host
	d.mu.Unlock()
	f.clock.Advance(2 * time.Second)
	if _, err := d.run(context.Background(), c, withTimeout(req("x")), saved); err != nil {
		t.Fatal(err)
	}
	if got := seen.take(); !equalPosts(got, []post{{"2022-11-28", false, 204}}) {
		t.Fatalf("POSTs %+v after resuming, want one without probing", got)
	}
}

func TestUnknownDispatchAPIInStateIsRefused(t *testing.T) {
	t.Parallel()
	s := (&Dispatcher{}).Record(req("x"), "", false)
	m := s.Encode()
	m["dispatchAPI"] = "2030-01-01"
	if _, err := Decode(m); err == nil {
		t.Fatal("a state naming an unknown dispatch API was read")
	}
}

func withTimeout(r Request) Request {
	r.Timeout = 60 * time.Second
	return r
}

func equalPosts(a, b []post) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// run advances s until it ends, sleeping on the dispatcher's clock.
func (d *Dispatcher) run(ctx context.Context, c *ghclient.Client, r Request, s *State) (*Run, error) {
	for {
		step, err := d.Advance(ctx, c, r, s)
		if err != nil || s.Done() {
			return s.Run, err
		}
		if err := d.clock().Sleep(ctx, step.Wait); err != nil {
			return nil, err
		}
	}
}

// Where a dispatch starts when nothing was learned yet: the newest version
// on github.com, 2022-11-28 with run details on an Enterprise Server (one
// refused try on GHES 3.20 rather than two, which a command-line process
// pays on every invocation).
func TestDispatchStartsPerHostKind(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ghsim.Options{})
	dotcom := f.client(t, "https://github.com/myorg/my-app", credentials.Credentials{Token: token})
	if got := dispatchAPI(&hostState{}, dotcom, &State{}); got != API2026 {
		t.Errorf("github.com starts with %q, want %q", got, API2026)
	}
	if got := dispatchAPI(&hostState{}, f.ghesClient(t), &State{}); got != API2022RunDetails {
		t.Errorf("an Enterprise Server starts with %q, want %q", got, API2022RunDetails)
	}
	if got := dispatchAPI(&hostState{}, f.ghesClient(t), &State{DispatchAPI: API2022}); got != API2022 {
		t.Errorf("a saved state's way %q is not kept: %q", API2022, got)
	}
}
