package ghclient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
)

// MaxResponseBytes caps every response body. The largest answer this
// project reads is a page of 100 runs or jobs, 0.5-1.5 MB; 4 MiB leaves room
// for that to grow, and a caller bounding a listing of N pages can count on
// N times this. (16 MiB pages decoded into 1.1 GB each.)
const MaxResponseBytes = 4 << 20

// MaxResponseContainers caps the JSON objects and arrays in one response
// body, which is what decoding multiplies: an empty object ("{}", two
// bytes) can become a struct of up to 900 bytes (a Repository), so 4 MiB
// of them decoded into over a gigabyte. A page of 100 jobs of 100 steps
// each has about 10,000; 32,768 of the largest struct is under 30 MB.
const MaxResponseContainers = 32 << 10

// ErrResponseTooLarge is returned when a body exceeds MaxResponseBytes.
var ErrResponseTooLarge = errors.New("response body exceeds the size limit")

// authTransport adds the token to requests for the API origin only
// (scheme, host and port). Because it works per request, a redirect to
// another origin never carries the token, even if it were followed.
type authTransport struct {
	base   http.RoundTripper
	api    *url.URL
	tokens credentials.TokenSource
}

// RoundTrip sends req; its errors never show a secret (redactedError).
func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.roundTrip(req)
	if err != nil {
		return nil, redacted(err)
	}
	return resp, nil
}

func (t *authTransport) roundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(req.URL, t.api) {
		req = req.Clone(req.Context())
		req.Header.Del("Authorization")
		return t.base.RoundTrip(req)
	}
	tok, err := t.tokens.Token(req.Context())
	if err != nil {
		return nil, &TokenError{Err: err}
	}
	resp, err := t.send(req, tok)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	// An installation token can be revoked before it expires; mint a fresh
	// one and try once more. A 401 means GitHub did not act on the request,
	// so repeating it cannot duplicate a dispatch.
	ref, ok := t.tokens.(credentials.Refresher)
	if !ok || (req.Body != nil && req.GetBody == nil) {
		return resp, nil
	}
	ref.Invalidate(tok)
	fresh, err := ref.Token(req.Context())
	if err != nil || fresh == tok {
		return resp, nil
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return t.send(retry, fresh)
}

func (t *authTransport) send(req *http.Request, tok string) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(req)
}

// TokenError wraps a failure to obtain a token (for GitHub Apps, the token
// exchange), so that callers can tell it from a failure of the request.
type TokenError struct{ Err error }

func (e *TokenError) Error() string { return "obtaining a GitHub token: " + e.Err.Error() }
func (e *TokenError) Unwrap() error { return e.Err }

// limitTransport caps response bodies at MaxResponseBytes and
// MaxResponseContainers.
type limitTransport struct{ base http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > MaxResponseBytes {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %w (%d bytes announced)", req.Method, req.URL.Path, ErrResponseTooLarge, resp.ContentLength)
	}
	resp.Body = newLimitedBody(resp.Body)
	return resp, nil
}

// cappedBody reads at most left bytes of rc, whatever Content-Length said;
// one byte more fails, from then on, with over's error (a body of exactly
// the limit is fine).
type cappedBody struct {
	rc   io.ReadCloser
	left int64
	over func() error
	err  error
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			b.err = b.over()
			return 0, b.err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// limitedBody is an API answer's body: at most MaxResponseBytes, and at most
// MaxResponseContainers JSON objects and arrays in them; past either limit
// it fails, from then on, with ErrResponseTooLarge.
type limitedBody struct {
	cappedBody
	json containerCounter
}

func newLimitedBody(rc io.ReadCloser) *limitedBody {
	return &limitedBody{cappedBody: cappedBody{rc: rc, left: MaxResponseBytes, over: func() error {
		return fmt.Errorf("%w (more than %d MiB)", ErrResponseTooLarge, MaxResponseBytes>>20)
	}}}
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.cappedBody.Read(p)
	if n > 0 && b.json.count(p[:n]) > MaxResponseContainers {
		b.err = fmt.Errorf("%w (more than %d JSON objects and arrays)", ErrResponseTooLarge, MaxResponseContainers)
		return n, b.err
	}
	return n, err
}

// containerCounter counts the JSON objects and arrays opened in a stream
// read in pieces: '{' and '[' outside strings.
type containerCounter struct {
	n                 int
	inString, escaped bool
}

func (c *containerCounter) count(p []byte) int {
	for _, ch := range p {
		switch {
		case c.escaped:
			c.escaped = false
		case c.inString && ch == '\\':
			c.escaped = true
		case ch == '"':
			c.inString = !c.inString
		case !c.inString && (ch == '{' || ch == '['):
			c.n++
		}
	}
	return c.n
}
