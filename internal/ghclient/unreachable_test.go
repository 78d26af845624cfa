package ghclient

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/failure"
)

// Only what a configuration change fixes is final; a DNS server failing or
// timing out, and a connection reset, may pass.
func TestClassifyUnsentTellsConfigurationFromChance(t *testing.T) {
	dial := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	for _, tc := range []struct {
		name  string
		err   error
		final bool
		says  string
	}{
		{"no such host", dial(&net.DNSError{Err: "no such host", Name: "ghe.typo", IsNotFound: true}), true, "the host ghe.typo does not exist"},
		{"DNS server failing", dial(&net.DNSError{Err: "server misbehaving", Name: "ghe.example", IsTemporary: true}), false, "server misbehaving"},
		{"DNS timeout", dial(&net.DNSError{Err: "i/o timeout", Name: "ghe.example", IsTimeout: true}), false, "timeout"},
		{"connection refused", dial(syscall.ECONNREFUSED), true, "check the repository URL's host and port"},
		{"connection reset", dial(syscall.ECONNRESET), false, "reset"},
		{"refused address", &RefusedAddressError{Host: "169.254.169.254:443", What: "a link-local address"}, true, "never a GitHub API"},
	} {
		err := ClassifyUnsent(tc.err, "dispatching")
		if failure.IsFinal(err) != tc.final || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: final=%v %v", tc.name, failure.IsFinal(err), err)
		}
		if tc.final && !strings.Contains(err.Error(), "nothing was dispatched") {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: the cause is lost: %v", tc.name, err)
		}
		if c := Classify(tc.err, "reading run", Hints{}); failure.IsFinal(c) != tc.final {
			t.Errorf("%s: Classify final=%v: %v", tc.name, failure.IsFinal(c), c)
		}
	}
}
