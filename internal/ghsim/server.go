// Package ghsim is a GitHub REST API simulator for the endpoints the gha-*
// steps use: workflow dispatch, workflow runs, GitHub App token exchange and
// /meta. It serves HTTPS with its own CA, answers with GitHub's status codes,
// headers and JSON shapes (checked against GitHub's OpenAPI description by
// this package's tests), serves the Enterprise Server /api/v3 prefix, keeps
// rate-limit accounting, and can inject faults. Tests, benchmarks and the
// quick start use it; it holds everything in memory.
package ghsim

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// DispatchAnswer is how the simulator answers a workflow dispatch.
type DispatchAnswer int

const (
	// AnswerRunDetails: like github.com since 2026-02-19, 200 with the run
	// when return_run_details is true, else 204.
	AnswerRunDetails DispatchAnswer = iota
	// AnswerNoContent: always 204, like github.com before run details (and,
	// now and then, after).
	AnswerNoContent
	// AnswerGHES320: like GitHub Enterprise Server 3.20 and older, which
	// refuse return_run_details with 400 and otherwise answer 204.
	AnswerGHES320
)

// Options configure a simulator.
type Options struct {
	// Answer selects how dispatches are answered.
	Answer DispatchAnswer
	// RunDelay is how long after accepting a dispatch the run appears. With
	// AnswerRunDetails and return_run_details the answer itself waits this
	// long (GitHub answers once the run exists): a Sleep on Clock, which a
	// fake clock does at once by moving forward.
	RunDelay time.Duration
	// QueuedFor and RunFor are how long a run stays queued and then
	// in_progress before it completes.
	QueuedFor, RunFor time.Duration
	// RateLimit is the primary rate limit per token and hour (5000 when 0).
	RateLimit int
	// GHESVersion is what /api/v3/meta reports as installed_version.
	GHESVersion string
	// Addr to listen on; 127.0.0.1:0 when empty.
	Addr string
	// Observe, when set, sees every request (with its body) and the status
	// answered, for tests that check clients' requests.
	Observe func(Exchange)
	// ReadLag is how long a run named in a dispatch answer still answers
	// 404 to reads, as GitHub's replicas can lag behind its answer.
	ReadLag time.Duration
	// IgnoreListFilters makes run listings ignore every filter (workflow,
	// branch, event, created): a broken or hostile server.
	IgnoreListFilters bool
	// Clock is the simulator's time: run creation and progress, rate-limit
	// resets, token expiry, JWT checks and the Date header all read it, so a
	// test sharing a fake clock with the client sees minutes pass at once.
	// nil is the system clock. (The TLS certificate stays on the wall clock:
	// clients check it against theirs.)
	Clock clock.Clock
	// DateSkew sets the Date header this far off Clock while timestamps in
	// bodies (created_at) stay on Clock: a server whose clock is wrong, or
	// a proxy lying about it, for clients that compute server time from
	// Date.
	DateSkew time.Duration
	// NoDate sends no Date header at all.
	NoDate bool
	// APIVersions are the REST API versions the host serves, oldest first
	// (APIVersion2022, APIVersion2026); a request for another is refused
	// with 400. Empty: both, or only APIVersion2022 with AnswerGHES320.
	APIVersions []string
}

// Exchange is one request and the answer's status and body.
type Exchange struct {
	Route       string
	Method      string
	Path        string // without the /api/v3 prefix
	Query       map[string][]string
	Header      http.Header // the request's headers (tests collect the credentials sent)
	RequestBody []byte
	Status      int // 0 when the connection was dropped (a Drop fault)
	Body        []byte
}

// Server is a running simulator.
type Server struct {
	// URL is https://127.0.0.1:PORT; repository URLs on this host are
	// Enterprise Server URLs (API under /api/v3).
	URL string
	// Addr is the listener's host:port.
	Addr string
	// CACertPEM is the CA that signed the server certificate.
	CACertPEM []byte
	// BlobURL is the second HTTPS origin (https://localhost:PORT) that
	// artifact and log downloads redirect to, as GitHub's go to its blob
	// storage (blobstore.go).
	BlobURL string

	opts     Options
	clock    clock.Clock
	srv      *http.Server
	listener net.Listener

	mu          sync.Mutex
	repos       map[string]*Repo
	tokens      map[string]*tokenInfo
	apps        []*App
	faults      []*Fault
	nextRunID   int64
	nextWfID    int64
	stats       Stats
	rateUsed    map[string]int
	rateResetAt time.Time
	blobs       *blobStore
}

// Repo is a simulated repository.
type Repo struct {
	ID        int64
	Owner     string
	Name      string
	Refs      map[string]bool // branches and tags
	workflows map[string]*Workflow
	runs      []*run
	// commits are the refs' current commits (heads.go).
	commits map[string]string
}

// Workflow is a simulated workflow file.
type Workflow struct {
	ID   int64
	File string
	// Inputs are the declared workflow_dispatch inputs.
	Inputs []string
	// TriggerRefs are the refs at which the file has a workflow_dispatch
	// trigger; empty means every ref.
	TriggerRefs []string
	// Conclusion its runs end with ("success" when empty).
	Conclusion string
	// ConclusionLag is how long a completed run shows a null conclusion
	// before Conclusion, as GitHub can set the status a moment before the
	// conclusion; a lag longer than the test is a run that never gets one.
	ConclusionLag time.Duration
	// RunName is the workflow's run-name; ${{ inputs.NAME }} is replaced by
	// the dispatch's input. Empty: runs are titled with the workflow name.
	RunName string
	// Jobs are the jobs of each run; empty means one job, "build", with one
	// step, that ends as the run does.
	Jobs []Job
	// Environment, when set, holds each run in "waiting" for its approval
	// for ApprovalFor after it is queued.
	Environment *Environment
	// Content is the file's YAML, served by the contents endpoint at every
	// ref; empty: made from Inputs, RunName and TriggerRefs.
	Content string
	// Artifacts are uploaded by every run, listed once it completed
	// (artifacts.go).
	Artifacts []Artifact
	runNumber int
}

// Job is a job of a simulated workflow.
type Job struct {
	Name string
	// Steps are its step names, run in order.
	Steps []string
	// FailAt is the 1-based step that fails when the run fails, 0 for none
	// (the job then succeeds, or is cancelled when Cancelled is set).
	FailAt    int
	Cancelled bool
	// Log are the last lines the failing step prints before its
	// "##[error]" line, after LogFill bytes of filler output (logs.go).
	Log     []string
	LogFill int64
}

// Environment is a protected deployment environment a run waits on.
type Environment struct {
	Name        string
	Reviewers   []string
	ApprovalFor time.Duration
	// Manual, instead of ApprovalFor, holds each run in "waiting" until a
	// reviewer approves or rejects it (POST .../pending_deployments, see
	// review.go), as a person does by hand.
	Manual bool
}

// App is a simulated GitHub App.
type App struct {
	ID        int64
	ClientID  string
	PublicKey *rsa.PublicKey
	// Installations maps installation IDs to the repositories ("owner/name")
	// they can access.
	Installations map[int64][]string
	// ActionsReadOnly grants its installations actions: read, not write:
	// they can read runs but not dispatch.
	ActionsReadOnly bool
}

type tokenInfo struct {
	login    string
	readOnly bool
	// repos limits an installation token to these repositories ("owner/name").
	repos     map[string]bool
	expiresAt time.Time
}

// Stats counts what clients did.
type Stats struct {
	// Requests is every request answered, 304s included.
	Requests int
	// Counted is the requests that count against the primary rate limit
	// (everything but 304 answers to conditional requests).
	Counted int
	// NotModified is the 304 answers.
	NotModified int
	// SecondaryPoints is the cost under GitHub's secondary limit (GET 1,
	// POST/PATCH/PUT/DELETE 5).
	SecondaryPoints int
	// Dispatches is the dispatches accepted (each creates one run).
	Dispatches int
	// TokenExchanges is the installation tokens minted.
	TokenExchanges int
	// ByRoute counts requests per route name ("dispatch", "list-runs", ...).
	ByRoute map[string]int
	// BlobRequests counts the blob store's requests (not in Requests:
	// they are not GitHub API requests and cost no rate limit).
	BlobRequests int
}

// New starts a simulator.
func New(opts Options) (*Server, error) {
	cert, caPEM, err := newCertificates()
	if err != nil {
		return nil, err
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 5000
	}
	if opts.GHESVersion == "" {
		opts.GHESVersion = "3.21.0"
		if opts.Answer == AnswerGHES320 {
			opts.GHESVersion = "3.20.4"
		}
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	c := clock.Or(opts.Clock)
	s := &Server{
		Addr:        ln.Addr().String(),
		CACertPEM:   caPEM,
		opts:        opts,
		clock:       c,
		repos:       map[string]*Repo{},
		tokens:      map[string]*tokenInfo{},
		nextRunID:   int64(7_000_000_000 + rand.IntN(1_000_000)*1000),
		nextWfID:    90_000_000,
		rateUsed:    map[string]int{},
		rateResetAt: c.Now().Add(time.Hour).Truncate(time.Second),
		stats:       Stats{ByRoute: map[string]int{}},
	}
	s.URL = "https://" + s.Addr
	if err := s.startBlobStore(cert); err != nil {
		_ = ln.Close()
		return nil, err
	}
	s.listener = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12})
	s.srv = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: quietLog()}
	go func() { _ = s.srv.Serve(s.listener) }()
	return s, nil
}

// Clock is the simulator's clock (Options.Clock, or the system clock).
func (s *Server) Clock() clock.Clock { return s.clock }

// now is the simulator's time.
func (s *Server) now() time.Time { return s.clock.Now() }

// Close stops the simulator at once, connections and all: its clients
// need no goodbye, and HTTP/2's graceful shutdown would hold every Close
// (every test's cleanup) for a second.
func (s *Server) Close() {
	_ = s.srv.Close()
	_ = s.blobs.srv.Close()
}

// RootCAs is a pool holding the simulator's CA.
func (s *Server) RootCAs() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(s.CACertPEM)
	return p
}

// DialContext connects to the simulator whatever address is asked for, so a
// client can use real host names (api.github.com) with real TLS checks.
func (s *Server) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c, ok, err := s.dialBlob(ctx, network, addr); ok {
		return c, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, s.Addr)
}

// RepoURL is the Enterprise Server URL of a repository on this simulator.
func (s *Server) RepoURL(owner, name string) string { return s.URL + "/" + owner + "/" + name }

// AddRepo creates a repository with a main branch.
func (s *Server) AddRepo(owner, name string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Repo{ID: int64(len(s.repos) + 100), Owner: owner, Name: name, Refs: map[string]bool{"main": true}, workflows: map[string]*Workflow{}}
	s.repos[strings.ToLower(owner+"/"+name)] = r
	return r
}

// AddRef adds a branch or tag to a repository.
func (s *Server) AddRef(r *Repo, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Refs[ref] = true
}

// AddWorkflow adds a workflow file with a workflow_dispatch trigger.
func (s *Server) AddWorkflow(r *Repo, wf Workflow) *Workflow {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextWfID++
	w := wf
	w.ID = s.nextWfID
	r.workflows[w.File] = &w
	return &w
}

// AddToken registers a personal access token acting as login. A read-only
// token can list runs but not dispatch.
func (s *Server) AddToken(token, login string, readOnly bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = &tokenInfo{login: login, readOnly: readOnly}
}

// AddApp registers a GitHub App.
func (s *Server) AddApp(app *App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps = append(s.apps, app)
}

// RevokeToken makes a token invalid (an installation token revoked early).
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByRoute = map[string]int{}
	for k, v := range s.stats.ByRoute {
		st.ByRoute[k] = v
	}
	return st
}

// ResetStats zeroes the request counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{ByRoute: map[string]int{}}
}

// RunInfo is what the simulator knows of a run beyond the API: which
// dispatch created it. Tests use it to prove runs were attributed right.
type RunInfo struct {
	ID       int64
	Workflow string
	Ref      string
	Inputs   map[string]any
	Actor    string
}

// Runs lists every run created so far (visible or not yet), oldest first.
func (s *Server) Runs(r *Repo) []RunInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RunInfo, 0, len(r.runs))
	for _, run := range r.runs {
		out = append(out, RunInfo{ID: run.id, Workflow: run.workflow.File, Ref: run.ref, Inputs: run.inputs, Actor: run.actor})
	}
	return out
}

// Fault makes the simulator misbehave on matching requests.
type Fault struct {
	// Route is "dispatch", "list-runs", "get-run", "token", "jobs",
	// "artifacts", "download-artifact", "job-logs" or "" for all.
	Route string
	// Status answers with this status (for example 502) instead of acting.
	Status int
	// SecondaryRateLimit answers 403 with this Retry-After.
	SecondaryRateLimit time.Duration
	// Undocumented, with SecondaryRateLimit, words the rate limit so that
	// only its status and Retry-After header say what it is (Status 403 by
	// default, or 429).
	Undocumented bool
	// PrimaryRateLimit answers 403 with the primary limit exhausted until
	// an hour from now.
	PrimaryRateLimit bool
	// Drop closes the connection without an answer.
	Drop bool
	// AfterAction performs the request's action (a dispatch is accepted and
	// its run created) before failing: an ambiguous failure.
	AfterAction bool
	// Times is how many requests the fault hits; 0 means every one.
	Times int
	// Skip lets this many matching requests through before the fault hits.
	Skip int
	// Probability, when above 0, hits only that share of requests.
	Probability float64
	hits        int
}

// InjectFault adds a fault; faults are checked in the order added.
func (s *Server) InjectFault(f *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// fault returns the fault hitting this request, if any; s.mu is held.
func (s *Server) fault(route string) *Fault {
	for _, f := range s.faults {
		if f.Route != "" && f.Route != route {
			continue
		}
		if f.Times > 0 && f.hits >= f.Times {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			continue
		}
		if f.Probability > 0 && rand.Float64() >= f.Probability {
			continue
		}
		f.hits++
		return f
	}
	return nil
}

func (s *Server) repo(owner, name string) *Repo {
	return s.repos[strings.ToLower(owner+"/"+name)]
}

func (s *Server) appByIssuer(iss string) *App {
	for _, a := range s.apps {
		if a.ClientID == iss || fmt.Sprint(a.ID) == iss {
			return a
		}
	}
	return nil
}

// Repo returns the repository owner/name, or nil.
func (s *Server) Repo(owner, name string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repo(owner, name)
}
