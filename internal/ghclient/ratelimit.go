package ghclient

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/failure"
)

// RateLimited reports whether err is GitHub refusing a request for a rate
// limit, judged by the answer's status and headers (403 or 429 with
// Retry-After or X-RateLimit-Remaining: 0, or any 429), never by its
// documentation link: a rate-limited request was not acted on, and a later
// one will go through.
func RateLimited(err error) bool {
	var rle *github.RateLimitError
	var arle *github.AbuseRateLimitError
	if errors.As(err, &rle) || errors.As(err, &arle) {
		return true
	}
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && isRateLimited(er.Response)
}

// RetryAfter is how long to wait before trying again after err: a rate
// limit's Retry-After or reset, or the time a classified error carries.
func RetryAfter(err error) (time.Duration, bool) {
	if err == nil {
		return 0, false
	}
	var fe *failure.Error
	if errors.As(err, &fe) && !fe.RetryAt.IsZero() {
		return max(time.Until(fe.RetryAt), 0), true
	}
	var rle *github.RateLimitError
	if errors.As(err, &rle) {
		return max(time.Until(rle.Rate.Reset.Time)+time.Second, 0), true
	}
	var arle *github.AbuseRateLimitError
	if errors.As(err, &arle) {
		if arle.RetryAfter != nil {
			return *arle.RetryAfter, true
		}
		return secondaryDefaultWait, true
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && isRateLimited(er.Response) {
		return rateLimitWait(er.Response)
	}
	return 0, false
}

// rateLimitResponse builds the classified error of a rate-limited answer
// that go-github did not recognise as one.
func rateLimitResponse(er *github.ErrorResponse, action string) error {
	w, _ := rateLimitWait(er.Response)
	msg := fmt.Sprintf("%s: GitHub refused the request for a rate limit (%d); retry after %s", action, er.Response.StatusCode, w.Round(time.Second))
	return failure.TransientUntil(&statusError{msg: msg, cause: er}, time.Now().Add(w))
}
