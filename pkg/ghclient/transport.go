package ghclient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/kargo-gha/kargo-gha/pkg/credentials"
)

// MaxResponseBytes caps every response body: the largest answer this project
// reads is a page of 100 runs (well under 2 MiB), so a hostile or broken
// server cannot make it hold more than this in memory.
const MaxResponseBytes = 16 << 20

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

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
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

// limitTransport caps response bodies at MaxResponseBytes.
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
	resp.Body = &limitedBody{rc: resp.Body, left: MaxResponseBytes}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe for one more byte: a body of exactly the limit is fine.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, ErrResponseTooLarge
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

func (b *limitedBody) Close() error { return b.rc.Close() }
