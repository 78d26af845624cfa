package ghclient

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"

	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

// redactedError is a transport error whose text has secrets redacted: a
// proxy's user and password (net/http quotes an unparsable HTTPS_PROXY
// whole; a proxy may echo them in its answer to CONNECT) and anything
// safetext knows. It unwraps to the error itself, so callers still tell
// what failed (NotSent, RefusedAddressError); Describe cleans the text it
// takes from there.
type redactedError struct{ err error }

func (e *redactedError) Error() string { return safetext.Redact(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }

// redacted wraps err, once.
func redacted(err error) error {
	if _, done := err.(*redactedError); done || err == nil {
		return err
	}
	return &redactedError{err: err}
}

// proxyCredentials registers with safetext the user, the password and the
// Basic credential made of them of every proxy base chooses, so that they
// are redacted wherever they appear, whatever the proxy answers.
func proxyCredentials(base func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		u, err := base(req)
		if err == nil && u != nil && u.User != nil {
			registerProxyUser(u.User)
		}
		return u, err
	}
}

// registeredProxyUsers holds the user info already registered: a process
// has one or two proxies, and registering is not free.
var registeredProxyUsers sync.Map

func registerProxyUser(ui *url.Userinfo) {
	if _, done := registeredProxyUsers.LoadOrStore(ui.String(), true); done {
		return
	}
	pass, _ := ui.Password()
	basic := base64.StdEncoding.EncodeToString([]byte(ui.Username() + ":" + pass))
	safetext.Register(ui.Username(), pass, basic)
}
