package ghclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// downloadEnv is an API server that redirects /download to location,
// and a blob server on another origin that records what it received.
type downloadEnv struct {
	api, blob *httptest.Server
	location  func(blob string) string
	blobBody  string
	// blobStatus, when set, is the blob store's answer.
	blobStatus int
	mu         sync.Mutex
	blobAuth   []string
	client     *Client
}

func newDownloadEnv(t *testing.T) *downloadEnv {
	e := &downloadEnv{location: func(blob string) string { return blob + "/blob?sig=s3cr3t" }, blobBody: "hello"}
	e.blob = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.blobAuth = append(e.blobAuth, r.Header.Get("Authorization"))
		e.mu.Unlock()
		if r.URL.Path == "/hop" {
			http.Redirect(w, r, "/blob", http.StatusFound)
			return
		}
		if e.blobStatus != 0 {
			w.WriteHeader(e.blobStatus)
		}
		_, _ = io.WriteString(w, e.blobBody)
	}))
	e.api = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer ghp_download_test_token" {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/api/v3/gone":
			w.WriteHeader(http.StatusGone)
			_, _ = io.WriteString(w, `{"message":"Artifact has expired"}`)
		case "/api/v3/missing":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message":"Not Found"}`)
		default:
			w.Header().Set("Location", e.location(e.blob.URL))
			w.WriteHeader(http.StatusFound)
		}
	}))
	t.Cleanup(e.api.Close)
	t.Cleanup(e.blob.Close)
	// Both test servers have httptest's certificate: one root for both.
	roots := e.api.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	repo, err := repourl.Parse(e.api.URL+"/o/r", repourl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.client, err = (&Pool{RootCAs: roots}).Client(repo, credentials.Credentials{Token: "ghp_download_test_token", Source: "test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *downloadEnv) download(path string, limit int64) (string, error) {
	body, err := e.client.Download(context.Background(), path, "the test blob", limit)
	if err != nil {
		return "", err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	return string(b), err
}

// The redirect is followed by the download client: the blob arrives, and
// the blob store (another origin) never receives the token, also through
// its own redirect.
func TestDownloadFollowsTheRedirectWithoutTheToken(t *testing.T) {
	e := newDownloadEnv(t)
	for _, loc := range []string{"/blob?sig=1", "/hop?sig=2"} {
		e.location = func(blob string) string { return blob + loc }
		got, err := e.download("download", 1<<10)
		if err != nil || got != "hello" {
			t.Fatalf("%s: %q, %v", loc, got, err)
		}
	}
	if len(e.blobAuth) != 3 {
		t.Fatalf("blob store asked %d times, want 3", len(e.blobAuth))
	}
	for _, a := range e.blobAuth {
		if a != "" {
			t.Fatalf("the blob store received Authorization %q", a)
		}
	}
}

// Every refusal is named, and none reaches the blob store.
func TestDownloadRefusals(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		location string // "" keeps the blob store's URL
		body     string
		status   int
		limit    int64
		want     string
		is       error
		final    bool
	}{
		{name: "plain http", path: "d", location: "http://blob.example/x?sig=1", want: "only https is followed", final: true},
		{name: "user info", path: "d", location: "https://user:pw@blob.example/x", want: "carries user information", final: true},
		{name: "metadata address", path: "d", location: "https://169.254.169.254/latest/meta-data/?sig=s3cr3t", want: "link-local", final: true},
		{name: "expired", path: "gone", want: "expired (410 Gone)", is: ErrDownloadGone, final: true},
		{name: "missing", path: "missing", want: "404", final: true},
		{name: "signed URL expired", path: "d", status: http.StatusForbidden, body: "<Error><Code>AuthenticationFailed</Code></Error>", want: "the blob store answered 403", final: false},
		{name: "too large", path: "d", body: strings.Repeat("x", 2000), limit: 1000, want: "exceeds its size limit", is: ErrDownloadTooLarge, final: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDownloadEnv(t)
			if tt.location != "" {
				e.location = func(string) string { return tt.location }
			}
			if tt.body != "" {
				e.blobBody = tt.body
			}
			e.blobStatus = tt.status
			if tt.limit == 0 {
				tt.limit = 1 << 10
			}
			_, err := e.download(tt.path, tt.limit)
			switch {
			case err == nil || !strings.Contains(err.Error(), tt.want):
				t.Fatalf("%v, want %q", err, tt.want)
			case tt.is != nil && !errors.Is(err, tt.is):
				t.Fatalf("%v is not %v", err, tt.is)
			case failure.IsFinal(err) != tt.final:
				t.Fatalf("%v: final %t", err, failure.IsFinal(err))
			case strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "pw@"):
				t.Fatalf("the error shows the signed URL's secret: %v", err)
			}
			if tt.body == "" && len(e.blobAuth) != 0 {
				t.Fatalf("the blob store was asked %d times", len(e.blobAuth))
			}
		})
	}
}

// A body that streams more than its limit without announcing it fails
// once past the limit.
func TestDownloadCapsAnUnannouncedBody(t *testing.T) {
	e := newDownloadEnv(t)
	e.blob.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush() // no Content-Length
		for range 100 {
			_, _ = io.WriteString(w, strings.Repeat("y", 1000))
		}
	})
	_, err := e.download("d", 10_000)
	if !errors.Is(err, ErrDownloadTooLarge) || !strings.Contains(err.Error(), "more than 10000 bytes") {
		t.Fatalf("%v", err)
	}
}
