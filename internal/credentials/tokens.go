package credentials

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jferrl/go-githubauth"
	"golang.org/x/oauth2"

	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

const (
	// RefreshMargin is how long before its expiry a cached installation
	// token is replaced. It exceeds the longest a step holds a token between
	// two requests (a dispatch waits at most 300 s for its run), so no request
	// carries a token that expires on the way.
	RefreshMargin = 5 * time.Minute
	// jwtLifetime stays under GitHub's 10-minute maximum so that a JWT minted
	// on a clock slightly ahead of GitHub's is still accepted.
	jwtLifetime = 9 * time.Minute
)

// TokenSource hands out the token for the next request.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Refresher is a TokenSource whose token can be dropped after GitHub
// rejected it (a 401 on an installation token that was revoked early).
type Refresher interface {
	TokenSource
	Invalidate(token string)
}

// StaticToken is a personal access token, or any token minted elsewhere.
type StaticToken string

// Token returns the token itself.
func (t StaticToken) Token(context.Context) (string, error) { return string(t), nil }

// ExchangeFunc trades a signed App JWT for an installation token, with the
// time GitHub says it expires (POST /app/installations/{id}/access_tokens).
type ExchangeFunc func(ctx context.Context, jwt string) (token string, expiresAt time.Time, err error)

// InstallationTokenSource mints GitHub App installation tokens and shares
// each one with every caller until RefreshMargin before it expires, so a
// thousand concurrent dispatches cost one token exchange an hour.
type InstallationTokenSource struct {
	jwt      oauth2.TokenSource
	exchange ExchangeFunc
	now      func() time.Time

	// sem is a one-slot semaphore rather than a mutex so that a caller
	// waiting for another's exchange can give up when its context ends.
	sem       chan struct{}
	token     string
	expiresAt time.Time
}

// NewInstallationTokenSource signs App JWTs with the App's private key
// (RS256, issuer = client ID or App ID) and exchanges them with exchange.
func NewInstallationTokenSource(app *App, exchange ExchangeFunc) (*InstallationTokenSource, error) {
	var (
		jwt oauth2.TokenSource
		err error
	)
	opt := githubauth.WithApplicationTokenExpiration(jwtLifetime)
	if app.ClientID != "" {
		jwt, err = githubauth.NewApplicationTokenSource(app.ClientID, app.PrivateKeyPEM, opt)
	} else {
		jwt, err = githubauth.NewApplicationTokenSource(app.AppID, app.PrivateKeyPEM, opt)
	}
	if err != nil {
		// The library's message may quote the key material's parse state but
		// never the key; still, say only what the user must fix.
		where := app.KeySource
		if where == "" {
			where = "the credentials"
		}
		if cerr := checkPrivateKey(app.PrivateKeyPEM, where); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("the GitHub App private key from %s is not a valid PEM-encoded RSA private key", where)
	}
	return &InstallationTokenSource{jwt: jwt, exchange: exchange, now: time.Now, sem: make(chan struct{}, 1)}, nil
}

// Token returns the cached installation token or mints a new one.
func (s *InstallationTokenSource) Token(ctx context.Context) (string, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.sem }()
	if s.token != "" && s.now().Add(RefreshMargin).Before(s.expiresAt) {
		return s.token, nil
	}
	jwt, err := s.jwt.Token()
	if err != nil {
		return "", fmt.Errorf("signing the GitHub App JWT: %w", err)
	}
	safetext.Register(jwt.AccessToken)
	tok, exp, err := s.exchange(ctx, jwt.AccessToken)
	if err != nil {
		return "", err
	}
	safetext.Register(tok)
	s.token, s.expiresAt = tok, exp
	return tok, nil
}

// Invalidate drops token if it is the cached one, so the next Token call
// mints a fresh one.
func (s *InstallationTokenSource) Invalidate(token string) {
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	if s.token == token {
		s.token = ""
	}
}

// maxTokenSources bounds a Cache: one source per App installation and
// repository is far below it in any real controller.
const maxTokenSources = 4096

// Cache shares installation token sources between clients, keyed by API
// host, App, installation and repository scope.
type Cache struct {
	mu      sync.Mutex
	sources map[string]*InstallationTokenSource
}

// Get returns the source for key, creating it with create on first use.
func (c *Cache) Get(key string, create func() (*InstallationTokenSource, error)) (*InstallationTokenSource, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.sources[key]; ok {
		return s, nil
	}
	if len(c.sources) >= maxTokenSources {
		c.sources = nil // start afresh: at worst one exchange more each
	}
	s, err := create()
	if err != nil {
		return nil, err
	}
	if c.sources == nil {
		c.sources = map[string]*InstallationTokenSource{}
	}
	c.sources[key] = s
	return s, nil
}
