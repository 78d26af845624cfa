package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// Errors only a configuration change can fix are final (exit 1) after a
// short, bounded retry, on dispatch and wait alike, and their words say
// what to check and that nothing was dispatched; none says a run exists or
// goes on, or that retrying is safe.
func TestUnreachableServerIsFinal(t *testing.T) {
	closed := closedPort(t)
	for _, tc := range []struct {
		name, url, why string
		dial           func(context.Context, string, string) (net.Conn, error)
	}{
		{name: "metadata address", url: "https://169.254.169.254/o/r", why: "never a GitHub API"},
		{name: "unresolvable host", url: "https://ghe.typo.example/o/r", why: "the host ghe.typo.example does not exist",
			dial: func(context.Context, string, string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "ghe.typo.example", IsNotFound: true}}
			}},
		{name: "connection refused", url: "https://" + closed + "/o/r", why: "nothing accepts connections at " + closed + "; check the repository URL's host and port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dials atomic.Int32
			dial := tc.dial
			if dial == nil {
				dial = (&net.Dialer{}).DialContext
			}
			pool := &ghclient.Pool{Clock: clock.NewFake(time.Now()), DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return dial(ctx, network, addr)
			}}
			if tc.name == "metadata address" {
				pool.DialContext = nil // the real guarded dialer
			}
			for _, args := range [][]string{
				{"dispatch", "--repo-url", tc.url, "--workflow-file", "deploy.yml", "--ref", "main", "--timeout", "5s"},
				{"wait", "--repo-url", tc.url, "--run-id", "42", "--timeout", "5s"},
			} {
				dials.Store(0)
				code, stderr := runWithPool(t, pool, args...)
				if code != ExitFinal || !strings.Contains(stderr, tc.why) {
					t.Errorf("%s: exit %d: %s", args[0], code, stderr)
				}
				for _, never := range []string{"retrying is safe", "goes on", "trying again"} {
					if strings.Contains(stderr, never) {
						t.Errorf("%s says %q: %s", args[0], never, stderr)
					}
				}
				if args[0] == "dispatch" && !strings.Contains(stderr, "nothing was dispatched") {
					t.Errorf("dispatch does not say nothing was dispatched: %s", stderr)
				}
				if n := dials.Load(); tc.dial != nil || tc.name == "connection refused" {
					if n < 2 || n > 4 {
						t.Errorf("%s: %d dials; want a short retry (2 to 4)", args[0], n)
					}
				}
			}
		})
	}
}

// A run ID that does not exist is final also when --timeout ends the wait
// before the not-found grace: the words say it was not found, not that it
// goes on.
func TestWaitForMissingRunIsFinalWithShortTimeout(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	for _, timeout := range []string{"5s", "1m"} {
		code := f.run(t, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", "999999", "--timeout", timeout)
		stderr := f.stderr.String()
		if code != ExitFinal || !strings.Contains(stderr, "999999") || strings.Contains(stderr, "goes on") {
			t.Errorf("--timeout %s: exit %d: %s", timeout, code, stderr)
		}
		if !strings.Contains(errorLines(stderr)[0], "not found") && !strings.Contains(errorLines(stderr)[0], "does not exist") {
			t.Errorf("--timeout %s: the error does not say the run was not found: %s", timeout, stderr)
		}
	}
}

// runWithPool runs the command in process on pool, with a token.
func runWithPool(t *testing.T, pool *ghclient.Pool, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	f := &Factory{
		IO:      IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr},
		Getenv:  func(k string) string { return map[string]string{"GH_TOKEN": testToken}[k] },
		Runner:  testRunner(pool, pool.Clock),
		Version: "test",
	}
	return Run(context.Background(), f, args), stderr.String()
}

// closedPort is a local address nothing listens at.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
