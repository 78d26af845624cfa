package ghclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/failure"
)

const (
	// MaxDownloadTime bounds one download (API redirect and blob body
	// together) whatever the caller's context allows: an artifact of a few
	// kilobytes or the part of a log that is read takes seconds.
	MaxDownloadTime = time.Minute
	// maxBlobRedirects bounds redirects within the blob store (a CDN hop).
	maxBlobRedirects = 3
)

// ErrDownloadTooLarge is returned when a downloaded blob exceeds the limit
// the caller set.
var ErrDownloadTooLarge = errors.New("the download exceeds its size limit")

// ErrDownloadGone is a 410 answer: the artifact (or log) expired and was
// deleted by GitHub's retention.
var ErrDownloadGone = errors.New("it has expired (410 Gone)")

// Download reads what an API path redirects to, as GitHub serves artifact
// archives and job logs: the API answers 302 with a signed URL on a blob
// store (another host). The API request carries the token, as every API
// request does, and its redirect is not followed by the API client; the
// blob is fetched by a separate client that never sends Authorization,
// only over https, through the same address guard, and reads at most limit
// bytes (more is ErrDownloadTooLarge). The caller closes the body.
//
// API errors come back classified (ErrDownloadGone for 410); a blob store
// refusing or failing is transient: the signed URL may have expired
// before it was used, and a new one is a request away.
func (c *Client) Download(ctx context.Context, apiPath, what string, limit int64) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, MaxDownloadTime)
	loc, err := c.blobLocation(ctx, apiPath, what)
	if err != nil {
		cancel()
		return nil, err
	}
	body, err := c.fetchBlob(ctx, loc, what, limit)
	if err != nil {
		cancel()
		return nil, err
	}
	return &cancelBody{ReadCloser: body, cancel: cancel}, nil
}

// blobLocation asks the API for the blob's signed URL: the 302's Location.
func (c *Client) blobLocation(ctx context.Context, apiPath, what string) (*url.URL, error) {
	req, err := c.NewRequest(ctx, http.MethodGet, apiPath, nil)
	if err != nil {
		return nil, err
	}
	hc := c.Client.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return nil, Classify(err, "asking GitHub for "+what, Hints{})
	}
	defer drainClose(resp.Body)
	switch resp.StatusCode {
	case http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect:
	case http.StatusGone:
		return nil, failure.Final(fmt.Errorf("%s: %w", what, ErrDownloadGone))
	default:
		if cerr := github.CheckResponse(resp); cerr != nil {
			return nil, Classify(cerr, "asking GitHub for "+what, Hints{
				NotFound:  "it does not exist, or the credentials cannot see it",
				Forbidden: "the credentials need the actions:read permission",
			})
		}
		return nil, failure.Final(fmt.Errorf("asking GitHub for %s: answered %d where a redirect to the download was expected", what, resp.StatusCode))
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, failure.Final(fmt.Errorf("asking GitHub for %s: the redirect names no valid location", what))
	}
	if err := checkBlobURL(loc); err != nil {
		return nil, failure.Final(fmt.Errorf("asking GitHub for %s: %w", what, err))
	}
	return loc, nil
}

// checkBlobURL accepts only https: a signed URL is a credential for the
// blob, and its content is read as the run's own.
func checkBlobURL(u *url.URL) error {
	if !strings.EqualFold(u.Scheme, "https") {
		return fmt.Errorf("refusing to download from %s: only https is followed", redirectTarget(u))
	}
	if u.User != nil {
		return fmt.Errorf("refusing to download from %s: the URL carries user information", redirectTarget(u))
	}
	return nil
}

// fetchBlob GETs the signed URL with the download client.
func (c *Client) fetchBlob(ctx context.Context, loc *url.URL, what string, limit int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, failure.Final(fmt.Errorf("downloading %s: %w", what, err))
	}
	req.Header.Set("User-Agent", c.UserAgent())
	resp, err := c.download.Do(req)
	if err != nil {
		// The url.Error would quote the signed URL, whose query is a
		// credential for the blob: only its cause is kept.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var refused *RefusedAddressError
		if errors.As(err, &refused) || isCertificateError(err) {
			return nil, failure.Final(fmt.Errorf("downloading %s from %s: %w", what, redirectTarget(loc), redacted(err)))
		}
		return nil, failure.Transient(fmt.Errorf("downloading %s from %s: %w", what, redirectTarget(loc), redacted(err)))
	}
	if resp.StatusCode != http.StatusOK {
		drainClose(resp.Body)
		return nil, failure.Transient(fmt.Errorf("downloading %s from %s: the blob store answered %d", what, redirectTarget(loc), resp.StatusCode))
	}
	if resp.ContentLength > limit {
		drainClose(resp.Body)
		return nil, failure.Final(fmt.Errorf("downloading %s: %w (%d bytes announced, the limit is %d)", what, ErrDownloadTooLarge, resp.ContentLength, limit))
	}
	return &cappedBody{rc: resp.Body, left: limit, over: func() error {
		return failure.Final(fmt.Errorf("%s: %w (more than %d bytes)", what, ErrDownloadTooLarge, limit))
	}}, nil
}

// downloadClient is the blob store's shared client for one TLS setting:
// a transport of its own (no token is ever added to it) with the API
// transport's dialer (the address guard), proxy choice (guarded too) and
// TLS roots; https only, redirects within https.
func (p *Pool) downloadClient(insecure bool) *http.Client {
	p.downloadOnce.Do(func() {
		p.downloads = map[bool]*http.Client{}
		for _, skip := range []bool{false, true} {
			base := p.transport(skip)
			t := &http.Transport{
				Proxy:                 base.Proxy,
				DialContext:           base.DialContext,
				TLSClientConfig:       base.TLSClientConfig.Clone(),
				TLSHandshakeTimeout:   base.TLSHandshakeTimeout,
				ResponseHeaderTimeout: responseHeaderTimeout,
				IdleConnTimeout:       base.IdleConnTimeout,
				ForceAttemptHTTP2:     true,
			}
			p.downloads[skip] = &http.Client{Transport: t, CheckRedirect: blobRedirects}
		}
	})
	return p.downloads[insecure]
}

// blobRedirects follows a blob store's own redirects over https only, and
// sends nothing but what a fresh GET would.
func blobRedirects(req *http.Request, via []*http.Request) error {
	if len(via) > maxBlobRedirects {
		return fmt.Errorf("stopped after %d redirects", maxBlobRedirects)
	}
	if err := checkBlobURL(req.URL); err != nil {
		return err
	}
	req.Header.Del("Authorization")
	req.Header.Del("Cookie")
	return nil
}

// cancelBody ends the download's context when the body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// drainClose reads a little of a body so that its connection can be
// reused, then closes it.
func drainClose(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 64<<10))
	_ = rc.Close()
}
