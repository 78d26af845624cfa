package ghclient

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

const (
	// maxAttempts bounds the tries of one request on 5xx and network errors.
	maxAttempts = 4
	// backoffBase and backoffMax shape the exponential backoff (with jitter)
	// between those tries: 250 ms, 500 ms, 1 s, capped at 5 s.
	backoffBase = 250 * time.Millisecond
	backoffMax  = 5 * time.Second
	// secondaryDefaultWait is GitHub's advice when a secondary limit names
	// no wait: at least a minute.
	secondaryDefaultWait = time.Minute
)

// tokenExchangePath matches the installation token exchange, which is safe
// to repeat: a second token is as good as the first.
var tokenExchangePath = regexp.MustCompile(`/app/installations/\d+/access_tokens$`)

// retryTransport absorbs transient failures within the caller's time
// budget (its context deadline). A request is repeated only when that
// cannot act twice on GitHub:
//   - reads (GET, HEAD) and the token exchange, on 5xx answers and network
//     errors, with exponential backoff and jitter;
//   - any request that provably never left this machine: a dial or DNS
//     error, and not one header of it written (see traceWrites).
//
// Rate limits are not waited out here: the answer goes back to the caller,
// whose error says how long to wait (RetryAfter), so that a step can return
// and be called again instead of sleeping.
//
// A dispatch answered with a 5xx, or cut off after it was sent, is not
// repeated here: the dispatcher decides, because GitHub may have acted.
type retryTransport struct {
	base http.RoundTripper
	// clock paces the retries; the system clock when nil.
	clock clock.Clock
}

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	safe := req.Method == http.MethodGet || req.Method == http.MethodHead || tokenExchangePath.MatchString(req.URL.Path)
	ctx := req.Context()
	failures := 0
	for {
		attempt := req
		if req.Body != nil && req.GetBody != nil && failures > 0 {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			attempt = req.Clone(ctx)
			attempt.Body = body
		}
		attempt, wrote := traceWrites(attempt)
		resp, err := t.base.RoundTrip(attempt)
		var wait time.Duration
		switch {
		case ctx.Err() != nil:
			return resp, err
		case err != nil && (errors.As(err, new(*RefusedAddressError)) || isCertificateError(err)):
			return nil, err // configuration, not chance: retrying cannot help
		case err != nil && (safe || (NotSent(err) && !wrote.Load())) && failures+1 < maxAttempts:
			failures++
			wait = backoff(failures)
		case err != nil:
			return nil, err
		case isRateLimited(resp):
			return resp, nil
		case resp.StatusCode >= 500 && safe && failures+1 < maxAttempts:
			failures++
			wait = backoff(failures)
		default:
			return resp, nil
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		}
		if err := clock.Or(t.clock).Sleep(ctx, wait); err != nil {
			return nil, ctx.Err()
		}
	}
}

// traceWrites returns req watched for its first header written to a
// connection. A write failing with an error that looks like "never sent"
// (a dial error) is repeated only if nothing of it was written: a transport
// that wrote it, lost the connection and failed to dial a new one to send
// it again reports the dial.
func traceWrites(req *http.Request) (*http.Request, *atomic.Bool) {
	wrote := new(atomic.Bool)
	if isRead(req.Method) {
		return req, wrote
	}
	mark := func() { wrote.Store(true) }
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteHeaderField: func(string, []string) { mark() },
		WroteHeaders:     mark,
	})
	return req.WithContext(ctx), wrote
}

// backoff is the pause before retry n (1-based): exponential, capped, with
// jitter so that many clients failing together do not retry together.
func backoff(n int) time.Duration {
	d := backoffBase << (n - 1)
	if d > backoffMax {
		d = backoffMax
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// isRateLimited recognises GitHub's primary (remaining 0) and secondary
// (Retry-After, or a bare 429) rate-limit answers.
func isRateLimited(resp *http.Response) bool {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return false
	}
	return resp.Header.Get("X-RateLimit-Remaining") == "0" || resp.Header.Get("Retry-After") != "" || resp.StatusCode == http.StatusTooManyRequests
}

// rateLimitWait is how long GitHub asks to wait: Retry-After, else until
// X-RateLimit-Reset, else a minute.
func rateLimitWait(resp *http.Response) (time.Duration, bool) {
	if v := strings.TrimSpace(resp.Header.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second, true
		}
		if at, err := http.ParseTime(v); err == nil {
			return time.Until(at), true
		}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
		if err != nil {
			return 0, false
		}
		// One second past the reset, as GitHub's clock and ours differ.
		return time.Until(time.Unix(reset, 0)) + time.Second, true
	}
	return secondaryDefaultWait, true
}

// NotSent reports whether err proves the request never reached the server:
// the connection could not be made (DNS, dial, refused), to the server or
// to the proxy ("proxyconnect", which net/http wraps around a dial error).
// Only such failures make a dispatch safe to repeat.
func NotSent(err error) bool {
	var op *net.OpError
	for e := err; errors.As(e, &op); e = op.Err {
		if op.Op == "dial" || op.Op == "proxyconnect" {
			return true
		}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var refused *RefusedAddressError
	return errors.As(err, &refused)
}
