package ghclient

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
)

// The REST API versions this project speaks, newest first. 2026-03-10
// answers a dispatch with the run's details always (github.com, GHES 3.21
// and later); 2022-11-28 is what every GHES still in support serves.
const (
	APIVersion2026 = "2026-03-10"
	APIVersion2022 = "2022-11-28"
)

// VersionHeader is the header GitHub reads the REST API version from.
const VersionHeader = "X-GitHub-Api-Version"

// maxVersionErrorBody bounds what is read of a 400 answer to tell whether
// it refuses the version: GitHub's error bodies are a few hundred bytes.
const maxVersionErrorBody = 8 << 10

// UnsupportedVersion reports an answer refusing the request's API version:
// a 400 (GitHub did not act on the request) whose message names the
// version header ("Unsupported 'X-GitHub-Api-Version' header: …").
func UnsupportedVersion(err error) bool {
	return StatusCode(err) == http.StatusBadRequest && refusesVersion(ErrorMessage(err))
}

func refusesVersion(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "api-version") || strings.Contains(m, "api version")
}

// hostVersions remembers, per API origin, whether the host serves
// APIVersion2026: learned from the first answer that shows it (a dispatch
// taken or refused under it, a read refused for its version) and kept while
// the process lives (hosts are few).
type hostVersions struct {
	mu    sync.Mutex
	serve map[string]bool // true: serves 2026-03-10; false: refuses it
}

const maxVersionHosts = 256

func (h *hostVersions) serves2026(origin string) (serves, known bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	serves, known = h.serve[origin]
	return serves, known
}

func (h *hostVersions) learn(origin string, serves bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.serve == nil || len(h.serve) >= maxVersionHosts {
		h.serve = map[string]bool{}
	}
	h.serve[origin] = serves
}

// versionTransport sends reads under APIVersion2026 where the host is known
// to serve it, else under APIVersion2022 (which every host in support
// serves today, so reads cost no probe); a read refused for its version is
// sent once more under the other, and the host remembered. The endpoints
// this project reads have no breaking change between the two. Only GETs are
// rewritten and repeated: a GET refused with a 400 was not acted on; a
// POST's version is its sender's choice (the dispatcher steps back itself,
// since a POST must never be repeated blindly).
type versionTransport struct {
	base  http.RoundTripper
	hosts *hostVersions
}

func (t versionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.Header.Get(VersionHeader) != APIVersion2022 {
		return t.base.RoundTrip(req)
	}
	o := origin(req.URL)
	v, other := APIVersion2022, APIVersion2026
	if serves, _ := t.hosts.serves2026(o); serves {
		v, other = APIVersion2026, APIVersion2022
	}
	resp, err := t.base.RoundTrip(withVersion(req, v))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		return resp, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxVersionErrorBody))
	_ = resp.Body.Close()
	if !refusesVersion(string(body)) {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	t.hosts.learn(o, other == APIVersion2026)
	return t.base.RoundTrip(withVersion(req, other))
}

func withVersion(req *http.Request, v string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set(VersionHeader, v)
	return r
}

// Serves2026 reports what this process learned of whether the client's API
// host serves APIVersion2026 (known is false until an answer showed it).
func (c *Client) Serves2026() (serves, known bool) {
	if c.versions == nil {
		return false, false
	}
	return c.versions.serves2026(c.apiOrigin)
}

// LearnServes2026 records what an answer showed of the host: a dispatch
// taken under APIVersion2026, or refused for it. Reads follow.
func (c *Client) LearnServes2026(serves bool) {
	if c.versions != nil {
		c.versions.learn(c.apiOrigin, serves)
	}
}
