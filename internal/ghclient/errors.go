package ghclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

// Describe is a short, safe description of a request's failure for a
// message: GitHub's status and message, or the network error's root cause.
func Describe(err error) string {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		msg := strings.TrimSpace(safetext.Clean(er.Message))
		if msg == "" {
			msg = http.StatusText(er.Response.StatusCode)
		}
		return fmt.Sprintf("GitHub answered %d %s", er.Response.StatusCode, msg)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return safetext.Clean(rootCause(err).Error())
}

// Hints say what a status means for the operation at hand, so the message a
// user reads names the likely cause rather than a bare status code.
type Hints struct {
	// NotFound explains a 404 (what may be missing or invisible).
	NotFound string
	// Unprocessable is advice appended to GitHub's own 422 message.
	Unprocessable string
	// Forbidden names the permission needed (for a 403 that is not a rate limit).
	Forbidden string
}

// Classify wraps err from a GitHub request with what was being attempted and
// marks it final or transient: 4xx answers are final (retrying sends the
// same request to the same refusal), 5xx answers, network failures and rate
// limits are transient.
func Classify(err error, action string, h Hints) error {
	if err == nil {
		return nil
	}
	var (
		rle  *github.RateLimitError
		arle *github.AbuseRateLimitError
		er   *github.ErrorResponse
		te   *TokenError
		ue   *url.Error
		se   *json.SyntaxError
		fe   *failure.Error
	)
	switch {
	case errors.As(err, &te) && errors.As(te.Err, &fe):
		return err // already classified by the token exchange
	case errors.As(err, &rle):
		reset := rle.Rate.Reset.Time
		return failure.TransientUntil(fmt.Errorf("%s: GitHub's primary rate limit is exhausted (%d requests an hour); it resets at %s",
			action, rle.Rate.Limit, reset.UTC().Format(time.RFC3339)), reset)
	case errors.As(err, &arle):
		wait := time.Minute
		if arle.RetryAfter != nil {
			wait = *arle.RetryAfter
		}
		return failure.TransientUntil(fmt.Errorf("%s: GitHub's secondary rate limit was hit; retry after %s", action, wait), time.Now().Add(wait))
	case errors.As(err, &er) && er.Response != nil && isRateLimited(er.Response):
		return rateLimitResponse(er, action)
	case errors.As(err, &er) && er.Response != nil:
		return classifyStatus(er, action, h)
	case unreachable(err) != "":
		return failure.Final(&unreachableError{msg: fmt.Sprintf("%s: %s: %s", action, Describe(err), unreachable(err)), cause: err})
	case errors.Is(err, ErrResponseTooLarge):
		return failure.Final(fmt.Errorf("%s: %w", action, err))
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", action, err)
	case errors.Is(err, context.DeadlineExceeded):
		return failure.Transient(fmt.Errorf("%s: no answer in time: %w", action, err))
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return failure.Transient(fmt.Errorf("%s: GitHub's answer was not valid JSON: %w", action, err))
	case errors.As(err, &ue):
		if isCertificateError(err) {
			return failure.Final(fmt.Errorf("%s: the server's TLS certificate is not trusted (%s); add its CA to the system roots (SSL_CERT_FILE) or, for a test server only, set insecureSkipTLSVerify: true (--insecure-skip-tls-verify on the command line)", action, Describe(err)))
		}
		return failure.Transient(fmt.Errorf("%s: %s", action, Describe(err)))
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return failure.Transient(fmt.Errorf("%s: %w", action, err))
	}
	return fmt.Errorf("%s: %w", action, err)
}

func classifyStatus(er *github.ErrorResponse, action string, h Hints) error {
	code := er.Response.StatusCode
	msg := strings.TrimSpace(safetext.Clean(er.Message))
	if msg == "" {
		msg = http.StatusText(code)
	}
	detail := fmt.Sprintf("GitHub answered %d %s", code, msg)
	for _, e := range er.Errors {
		if e.Message != "" {
			detail += "; " + safetext.Clean(e.Message)
		}
	}
	wrap := func(format string, args ...any) *statusError {
		return &statusError{msg: fmt.Sprintf(format, args...), cause: er}
	}
	switch {
	case code == http.StatusUnauthorized:
		return failure.Final(wrap("%s: %s: the credentials were rejected; the token is invalid, expired or revoked", action, detail))
	case code == http.StatusForbidden:
		hint := "the credentials lack a permission"
		if h.Forbidden != "" {
			hint = h.Forbidden
		}
		return failure.Final(wrap("%s: %s: %s", action, detail, hint))
	case code == http.StatusNotFound:
		hint := "it does not exist or the credentials cannot see it"
		if h.NotFound != "" {
			hint = h.NotFound
		}
		return failure.Final(wrap("%s: %s: %s", action, detail, hint))
	case code == http.StatusUnprocessableEntity && h.Unprocessable != "":
		return failure.Final(wrap("%s: %s (%s)", action, detail, h.Unprocessable))
	case code == http.StatusTooManyRequests || code >= 500:
		return failure.Transient(wrap("%s: %s", action, detail))
	default:
		return failure.Final(wrap("%s: %s", action, detail))
	}
}

// statusError is a classified error answer: its message says what was
// attempted and what GitHub answered; it unwraps to go-github's error, so
// StatusCode and RateLimited still see the answer.
type statusError struct {
	msg   string
	cause *github.ErrorResponse
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.cause }

// StatusCode is the HTTP status of a GitHub error answer, or 0.
func StatusCode(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	var rle *github.RateLimitError
	if errors.As(err, &rle) && rle.Response != nil {
		return rle.Response.StatusCode
	}
	return 0
}

// ErrorMessage is GitHub's own message in an error answer, or "".
func ErrorMessage(err error) string {
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		return er.Message
	}
	return ""
}

// isCertificateError reports a TLS verification failure: a configuration
// problem on this side (missing CA), not something a retry fixes.
func isCertificateError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}

func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// UnderBase reports whether u, a URL taken from a server's answer, lies
// under base (the repository's API or web URL) and carries no white space
// or escape: a URL shown to people and passed to later steps must point
// where the repository lives.
func UnderBase(u, base string) bool {
	return strings.HasPrefix(u, strings.TrimSuffix(base, "/")+"/") && !strings.ContainsAny(u, " \t\r\n\x1b")
}
