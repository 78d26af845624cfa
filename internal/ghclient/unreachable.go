package ghclient

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/kargo-gha/kargo-gha/internal/failure"
)

// unreachable says why a request that never reached a server cannot reach
// it on a later try either, or "". The transport has already tried it again
// (maxAttempts, backed off: about 2 s), which is the short retry a hiccup
// gets; past that, these are configuration, not chance
// (docs/reliability.md, "What is final"):
//   - a refused address (the metadata guard) is refused on every try;
//   - a host name the DNS says does not exist (NXDOMAIN, not a DNS server
//     failing or timing out) is a typo in the repository URL;
//   - a connection refused: nothing listens at that host and port. GitHub
//     never refuses connections, and a GitHub Enterprise Server being
//     upgraded answers 503 from its maintenance page; a refusal that
//     outlasts the retry is a wrong port or host.
func unreachable(err error) string {
	var (
		dns *net.DNSError
		op  *net.OpError
	)
	switch {
	case errors.As(err, new(*RefusedAddressError)):
		return "this address is never a GitHub API; check the repository URL's host"
	case errors.As(err, &dns) && dns.IsNotFound && !dns.IsTemporary && !dns.IsTimeout:
		return fmt.Sprintf("the host %s does not exist (DNS); check the repository URL's host", dns.Name)
	case errors.Is(err, syscall.ECONNREFUSED) && errors.As(err, &op) && op.Addr != nil:
		return fmt.Sprintf("nothing accepts connections at %s; check the repository URL's host and port", op.Addr)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing accepts connections there; check the repository URL's host and port"
	}
	return ""
}

// ClassifyUnsent classifies the error of a request that provably never
// reached GitHub (NotSent): final when only a configuration change can make
// it reach (see unreachable), transient otherwise (a DNS server failing, a
// timeout, a reset before anything was written).
func ClassifyUnsent(err error, action string) error {
	if why := unreachable(err); why != "" {
		return failure.Final(&unreachableError{msg: fmt.Sprintf("%s: %s: %s; nothing was sent, so nothing was dispatched", action, Describe(err), why), cause: err})
	}
	return failure.Transient(&unreachableError{msg: fmt.Sprintf("%s: %s; nothing was sent", action, Describe(err)), cause: err})
}

// unreachableError is a failure to reach the server: its message
// says what was attempted and what to check; it unwraps to the network
// error, so RefusedAddressError and NotSent still see it.
type unreachableError struct {
	msg   string
	cause error
}

func (e *unreachableError) Error() string { return e.msg }
func (e *unreachableError) Unwrap() error { return e.cause }
