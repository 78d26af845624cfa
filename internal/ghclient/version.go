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

// hostVersions remembers, per API origin, whether the host refused
// APIVersion2026: learned once per process, from the first answer that
// says so, and kept while the process lives (hosts are few).
type hostVersions struct {
	mu  sync.Mutex
	old map[string]bool // true: the host serves only older versions
}

const maxVersionHosts = 256

func (h *hostVersions) refuses2026(origin string) (refuses, known bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	refuses, known = h.old[origin]
	return refuses, known
}

func (h *hostVersions) learn(origin string, refuses bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.old == nil || len(h.old) >= maxVersionHosts {
		h.old = map[string]bool{}
	}
	h.old[origin] = refuses
}

// versionTransport speaks APIVersion2026 on reads where the host serves it
// and APIVersion2022 where it does not. Only GETs are rewritten and
// repeated: a GET refused for its version was not acted on and is safe to
// send again; a POST's version is its sender's choice (the dispatcher
// probes and falls back itself, since a POST must never be repeated
// blindly).
type versionTransport struct {
	base  http.RoundTripper
	hosts *hostVersions
}

func (t versionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.Header.Get(VersionHeader) != APIVersion2022 {
		return t.base.RoundTrip(req)
	}
	o := origin(req.URL)
	if refuses, known := t.hosts.refuses2026(o); known && refuses {
		return t.base.RoundTrip(req)
	}
	resp, err := t.base.RoundTrip(withVersion(req, APIVersion2026))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		if err == nil {
			t.hosts.learn(o, false)
		}
		return resp, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxVersionErrorBody))
	_ = resp.Body.Close()
	if !refusesVersion(string(body)) {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	t.hosts.learn(o, true)
	return t.base.RoundTrip(req)
}

func withVersion(req *http.Request, v string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set(VersionHeader, v)
	return r
}

// Serves2026 reports what this process learned of whether the client's API
// host serves APIVersion2026 (known is false before any read answered).
func (c *Client) Serves2026() (serves, known bool) {
	if c.versions == nil {
		return false, false
	}
	refuses, known := c.versions.refuses2026(c.apiOrigin)
	return !refuses, known
}
