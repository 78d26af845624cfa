package wait

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// checkAll checks every run once, as a controller's reconciles would.
func (f *fixture) checkAll(t *testing.T, ids []int64) map[int64]*Status {
	t.Helper()
	out := map[int64]*Status{}
	for _, id := range ids {
		st, err := f.checker.Check(context.Background(), f.client, id, "")
		if err != nil {
			t.Fatalf("run %d: %v", id, err)
		}
		out[id] = st
	}
	return out
}

// Fifty runs of one workflow cost one listing per interval, not fifty
// reads, and every run is still seen to end with its own answer.
func TestManyRunsOfOneWorkflowShareOneListing(t *testing.T) {
	f := newFixture(t, 30*time.Second, 60*time.Second, 0)
	var ids []int64
	for range 50 {
		ids = append(ids, f.start("success.yml"))
	}
	f.checkAll(t, ids) // first reads: one per run, naming the workflow
	f.sim.ResetStats()
	for range 5 { // 5 intervals while the runs are queued or running
		f.clock.Advance(10 * time.Second)
		for id, st := range f.checkAll(t, ids) {
			if st.Outcome != Running {
				t.Fatalf("run %d ended early: %+v", id, st)
			}
		}
	}
	st := f.sim.Stats()
	if st.ByRoute["get-run"] != 0 || st.ByRoute["list-runs"] != 5 {
		t.Fatalf("5 intervals of 50 runs: %d per-run reads, %d listings (want 0 and 5): %+v", st.ByRoute["get-run"], st.ByRoute["list-runs"], st)
	}
	if st.Counted > 2 {
		t.Errorf("unchanged listings must be 304s: %d counted of %d", st.Counted, st.Requests)
	}
	f.clock.Advance(2 * time.Minute)
	f.sim.ResetStats()
	for id, s := range f.checkAll(t, ids) {
		if s.Outcome != Succeeded || s.Conclusion != "success" || s.RunID != id {
			t.Fatalf("run %d: %+v", id, s)
		}
	}
	// The end is confirmed by each run's own read, once.
	if got := f.sim.Stats().ByRoute["get-run"]; got != len(ids) {
		t.Errorf("completed runs: %d per-run reads, want %d", got, len(ids))
	}
}

// One run alone keeps its per-run read: the command line's cost does not
// change.
func TestOneRunKeepsItsOwnRead(t *testing.T) {
	f := newFixture(t, 30*time.Second, 60*time.Second, 0)
	id := f.start("success.yml")
	for range 4 {
		f.checkAll(t, []int64{id})
		f.clock.Advance(10 * time.Second)
	}
	st := f.sim.Stats()
	if st.ByRoute["list-runs"] != 0 || st.ByRoute["get-run"] != 4 || st.Counted != 2 {
		t.Fatalf("one run: %+v (want 4 per-run reads, 2 counted: the first and the change to in_progress; no listing)", st)
	}
}

// A run that left the listing's first page is read on its own; so is
// every run when the listing is refused. A listing failing for an outage
// is the check's error: reading every run then would multiply the load.
func TestRunsOffThePageAndFailedListingsFallBack(t *testing.T) {
	f := newFixture(t, time.Hour, time.Hour, 0)
	old := []int64{f.start("success.yml"), f.start("success.yml")}
	f.checkAll(t, old)
	for range 100 {
		f.start("success.yml") // pushes both off the first page
	}
	f.sim.ResetStats()
	f.clock.Advance(10 * time.Second)
	f.checkAll(t, old)
	if st := f.sim.Stats(); st.ByRoute["get-run"] != 2 || st.ByRoute["list-runs"] != 1 {
		t.Fatalf("runs off the page: %+v (want one listing and 2 per-run reads)", st)
	}
	f.sim.InjectFault(&ghsim.Fault{Route: "list-runs", Status: 404})
	f.sim.ResetStats()
	f.clock.Advance(10 * time.Second)
	for id, st := range f.checkAll(t, old) {
		if st.Outcome != Running {
			t.Fatalf("run %d: %+v", id, st)
		}
	}
	if got := f.sim.Stats().ByRoute["get-run"]; got != 2 {
		t.Fatalf("refused listing: %d per-run reads, want 2", got)
	}
	f.sim.ClearFaults()
	f.sim.InjectFault(&ghsim.Fault{Route: "list-runs", Status: 502})
	f.sim.ResetStats()
	f.clock.Advance(10 * time.Second)
	for _, id := range old {
		if _, err := f.checker.Check(context.Background(), f.client, id, ""); err == nil || failure.IsFinal(err) {
			t.Fatalf("run %d during an outage of listings: %v, want a transient error", id, err)
		}
	}
	if got := f.sim.Stats().ByRoute["get-run"]; got != 0 {
		t.Fatalf("outage: %d per-run reads, want none", got)
	}
}

// Checks of many runs at once (a controller's concurrent reconciles) wait
// for one another's listing instead of each sending one.
func TestConcurrentChecksShareOneListing(t *testing.T) {
	f := newFixture(t, time.Hour, time.Hour, 0)
	var ids []int64
	for range 40 {
		ids = append(ids, f.start("success.yml"))
	}
	f.checkAll(t, ids)
	f.clock.Advance(10 * time.Second)
	f.sim.ResetStats()
	errs := make(chan error, len(ids))
	for _, id := range ids {
		go func() {
			_, err := f.checker.Check(context.Background(), f.client, id, "")
			errs <- err
		}()
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := f.sim.Stats(); st.ByRoute["list-runs"] != 1 || st.ByRoute["get-run"] != 0 {
		t.Fatalf("40 concurrent checks: %+v, want one listing", st)
	}
}

// A host (or a proxy in front of it) that answers listings without an
// ETag can never answer them 304: each would cost the primary budget, so
// runs whose own reads are conditional keep those.
func TestListingsWithoutETagFallBackToConditionalReads(t *testing.T) {
	f := newFixture(t, time.Hour, time.Hour, 0)
	up := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.sim.RootCAs()}}
	t.Cleanup(up.CloseIdleConnections)
	proxy := httptest.NewTLSServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "https", f.sim.Addr
		},
		Transport: up,
		ModifyResponse: func(resp *http.Response) error {
			if strings.HasSuffix(resp.Request.URL.Path, "/runs") {
				resp.Header.Del("ETag")
			}
			return nil
		},
	})
	t.Cleanup(proxy.Close)
	roots := x509.NewCertPool()
	roots.AddCert(proxy.Certificate())
	pool := &ghclient.Pool{RootCAs: roots, Clock: f.clock, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, proxy.Listener.Addr().String())
	}}
	r, _ := repourl.Parse("https://example.com/myorg/my-app", repourl.Options{})
	client, err := pool.Client(r, credentials.Credentials{Token: "ghp_wait", Source: "test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	f.client = client
	ids := []int64{f.start("success.yml"), f.start("success.yml")}
	f.checkAll(t, ids)
	for range 3 {
		f.clock.Advance(10 * time.Second)
		f.checkAll(t, ids)
	}
	// The first interval lists once and learns the listing has no ETag;
	// after that the runs' own reads, answered 304.
	if st := f.sim.Stats(); st.ByRoute["list-runs"] != 1 || st.ByRoute["get-run"] != 2+1+4 || st.NotModified < 5 {
		t.Fatalf("%+v: want one listing, then conditional reads", st)
	}
}
