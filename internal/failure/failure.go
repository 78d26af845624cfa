// Package failure classifies errors as final (retrying cannot help) or
// transient (a later attempt may succeed). The command line turns the class
// into an exit code and the Kargo adapter into a terminal or retried error.
package failure

import (
	"errors"
	"time"
)

// Error carries an error's class. Unwrap exposes the cause.
type Error struct {
	Err   error
	final bool
	// RetryAt, when set, is the earliest time a retry makes sense (for
	// example the reset of an exhausted rate limit).
	RetryAt time.Time
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Final marks err as one that retrying cannot fix: bad configuration, a
// missing workflow, refused credentials, a run that finished the wrong way.
func Final(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, final: true}
}

// Transient marks err as one a later attempt may not see: a 5xx, a network
// failure, an exhausted rate limit.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err}
}

// TransientUntil is Transient with the earliest sensible retry time.
func TransientUntil(err error, at time.Time) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, RetryAt: at}
}

// IsFinal reports whether err should not be retried. The outermost
// classification wins. Unclassified errors count as final: every caller of
// this project may be one retry away from a second dispatch, so an error
// nobody vouched for is not retried blindly.
func IsFinal(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.final
	}
	return true
}

// Unclassified reports an error that no one marked final or transient.
func Unclassified(err error) bool {
	var e *Error
	return !errors.As(err, &e)
}
