package ghclient

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

const secret = "ghp_must_not_travel_0123456789"

// apiServer is an Enterprise Server stand-in answering every request with h.
func apiServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *Client) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	repo, err := repourl.Parse(srv.URL+"/o/r", repourl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&Pool{RootCAs: roots}).Client(repo, credentials.Credentials{Token: secret, Source: "test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func TestAuthorizationNeverLeavesTheAPIHost(t *testing.T) {
	var leaked atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"id":1}`))
	}))
	defer other.Close()
	_, c := apiServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+secret {
			t.Errorf("the API host did not get the token")
		}
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	})
	_, _, err := c.Actions.GetWorkflowRunByID(context.Background(), "o", "r", 1)
	if err == nil || !strings.Contains(err.Error(), "another origin") {
		t.Fatalf("cross-host redirect followed: %v", err)
	}
	// Even a request sent straight to another host through this client
	// carries no token.
	req, _ := http.NewRequest(http.MethodGet, other.URL+"/direct", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	if resp, err := c.Client.Client().Do(req); err == nil {
		resp.Body.Close()
	}
	if leaked.Load() != 0 {
		t.Fatal("Authorization reached another host")
	}
}

func TestOversizedAnswerIsRefused(t *testing.T) {
	_, c := apiServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":1,"name":"`))
		chunk := []byte(strings.Repeat("x", 1<<20))
		for i := 0; i < 20; i++ { // 20 MiB, no Content-Length
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	_, _, err := c.Actions.GetWorkflowRunByID(context.Background(), "o", "r", 1)
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if classified := Classify(err, "reading run", Hints{}); !failure.IsFinal(classified) {
		t.Fatalf("not final: %v", classified)
	}
}

func TestMalformedJSONIsAClearError(t *testing.T) {
	for _, body := range []string{`{"id": 1, "status": `, `<html>proxy error</html>`, `{"id": "not a number"}`} {
		_, c := apiServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(body))
		})
		_, _, err := c.Actions.GetWorkflowRunByID(context.Background(), "o", "r", 1)
		if err == nil {
			t.Fatalf("%q accepted", body)
		}
		msg := Classify(err, "reading run", Hints{}).Error()
		if !strings.HasPrefix(msg, "reading run: ") || strings.Contains(msg, secret) {
			t.Fatalf("%q: %s", body, msg)
		}
	}
}

func TestLinkLocalAndMetadataHostsAreRefusedBeforeConnecting(t *testing.T) {
	for _, u := range []string{"https://169.254.169.254/o/r", "https://100.100.100.200/o/r", "https://[fd00:ec2::254]/o/r"} {
		repo, err := repourl.Parse(u, repourl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := (&Pool{}).Client(repo, credentials.Credentials{Token: secret, Source: "test"}, false)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Actions.GetWorkflowRunByID(context.Background(), "o", "r", 1)
		var refused *RefusedAddressError
		if !errors.As(err, &refused) || !NotSent(err) {
			t.Fatalf("%s: err = %v", u, err)
		}
		if classified := Classify(err, "reading run", Hints{}); !failure.IsFinal(classified) || !strings.Contains(classified.Error(), "metadata") {
			t.Fatalf("%s: %v", u, classified)
		}
	}
}

func TestRetriesReadsButNotDispatches(t *testing.T) {
	var reads, posts atomic.Int32
	_, c := apiServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		} else {
			reads.Add(1)
		}
		w.WriteHeader(http.StatusBadGateway)
	})
	_, _, _ = c.Actions.GetWorkflowRunByID(context.Background(), "o", "r", 1)
	_, _, _ = c.Actions.CreateWorkflowDispatchEventByFileName(context.Background(), "o", "r", "d.yml", githubDispatch())
	if reads.Load() != maxAttempts || posts.Load() != 1 {
		t.Fatalf("%d reads, %d posts; want %d and 1", reads.Load(), posts.Load(), maxAttempts)
	}
}
