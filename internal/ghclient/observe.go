package ghclient

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Answer is one HTTP answer from GitHub, as metrics see it: no URL (owner,
// repository and run IDs would make a label per run), no credentials.
type Answer struct {
	// Host is the API host ("api.github.com", "ghes.example.com").
	Host string
	// Endpoint names the operation (see Endpoint).
	Endpoint string
	// Status is the HTTP status; 304 is an unchanged conditional read.
	Status int
	// RateRemaining is X-RateLimit-Remaining, or -1 when the answer had none.
	RateRemaining int
}

// endpoints name the requests this project sends, by path (after the API
// prefix): a bounded set of label values.
var endpoints = []struct {
	name string
	re   *regexp.Regexp
}{
	{"dispatch", regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/workflows/[^/]+/dispatches$`)},
	{"list-workflow-runs", regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/workflows/[^/]+/runs$`)},
	{"list-repo-runs", regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/runs$`)},
	{"get-run", regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/runs/\d+$`)},
	{"list-jobs", regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/runs/\d+/(attempts/\d+/)?jobs$`)},
	{"pending-deployments", regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/runs/\d+/pending_deployments$`)},
	{"cancel-run", regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/runs/\d+/cancel$`)},
	{"list-artifacts", regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/runs/\d+/artifacts$`)},
	{"download-artifact", regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/artifacts/\d+/zip$`)},
	{"job-logs", regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/jobs/\d+/logs$`)},
	{"get-workflow", regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/workflows/[^/]+$`)},
	{"get-contents", regexp.MustCompile(`^/repos/[^/]+/[^/]+/contents/.+$`)},
	{"get-repo", regexp.MustCompile(`^/repos/[^/]+/[^/]+$`)},
	{"token", regexp.MustCompile(`^/app/installations/\d+/access_tokens$`)},
	{"user", regexp.MustCompile(`^/user$`)},
	{"meta", regexp.MustCompile(`^/meta$`)},
}

// Endpoint names the operation of a request path: one of the names in
// endpoints, or other.
func Endpoint(path string) string {
	path = strings.TrimPrefix(path, "/api/v3")
	for _, e := range endpoints {
		if e.re.MatchString(path) {
			return e.name
		}
	}
	return "other"
}

// observeTransport tells the client's Budget and the Pool's Observe of
// every answer, each try of a retried request included: each counts at
// GitHub.
type observeTransport struct {
	base   http.RoundTripper
	budget *Budget
	pool   *Pool // its Observe is read at each answer: set once, before use
}

func (t observeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if resp == nil {
		return resp, err
	}
	t.budget.Observe(resp)
	if observe := t.pool.Observe; observe != nil {
		remaining := -1
		if n, perr := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining")); perr == nil {
			remaining = n
		}
		observe(Answer{Host: req.URL.Hostname(), Endpoint: Endpoint(req.URL.Path), Status: resp.StatusCode, RateRemaining: remaining})
	}
	return resp, err
}
