// Package ghclient builds go-github clients for the repositories the steps
// act on: the right API host (github.com, GHE.com or Enterprise Server), TLS
// as configured, the token for the credentials, and errors classified as
// final or transient.
package ghclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/bounded"
	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

const (
	// responseHeaderTimeout bounds a request whose server accepted the
	// connection but never answers; GitHub answers within seconds.
	responseHeaderTimeout = 30 * time.Second
	// maxIdleConnsPerHost lets concurrent dispatches to one API host reuse
	// connections instead of opening one each.
	maxIdleConnsPerHost = 64
)

// maxClients and clientAge bound the client cache of a long-lived process:
// tokens rotate (Kargo mints a new App installation token every hour), and
// each new token is a new client; old ones age out.
const (
	maxClients = 512
	clientAge  = 2 * time.Hour
)

// userAgent is "kargo-gha/VERSION": version, else this module's version in
// the binary's build info (a Kargo controller that imports it), else "dev".
func userAgent(version string) string {
	if version != "" {
		return "kargo-gha/" + version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == modulePath && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return "kargo-gha/" + bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == modulePath && d.Version != "" && d.Version != "(devel)" {
				return "kargo-gha/" + d.Version
			}
		}
	}
	return "kargo-gha/dev"
}

const modulePath = "github.com/kargo-gha/kargo-gha"

// Pool hands out clients and shares what is expensive between them: TLS
// connections per host and installation tokens per App installation. One
// Pool lives as long as the process (a Kargo controller, a command).
type Pool struct {
	// RootCAs replaces the system roots when set (tests); nil means the
	// system pool, which honours SSL_CERT_FILE and SSL_CERT_DIR.
	RootCAs *x509.CertPool
	// DialContext replaces the dialer when set (tests route api.github.com
	// to the simulator this way, keeping real TLS and host names).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Proxy replaces the proxy choice when set (tests); nil means
	// HTTPS_PROXY, HTTP_PROXY and NO_PROXY. Either way the destination is
	// checked against RefusedAddresses before a proxy is asked for it.
	Proxy func(*http.Request) (*url.URL, error)
	// Version is the version the User-Agent names (the command's); when
	// empty, this module's version in the binary's build info (a Kargo
	// controller that imports it), else "dev".
	Version string
	// Clock paces retries of failed reads; the system clock when nil.
	// Tests share a fake one with the simulator.
	Clock clock.Clock
	// Observe, when set, sees every answer from GitHub (metrics). Set it
	// before the first request; it must be fast and safe for concurrent use.
	Observe func(Answer)

	once       sync.Once
	budgetMu   sync.Mutex // one Budget per host and identity, never two
	budgets    bounded.Map[string, *Budget]
	transports map[bool]*http.Transport
	// downloads are the blob store's clients, per TLS setting (download.go).
	downloadOnce sync.Once
	downloads    map[bool]*http.Client
	clients      bounded.Map[string, *Client]
	tokens       credentials.Cache
	versions     hostVersions
	grants       grants
}

// Client is a go-github client bound to one repository and its credentials.
type Client struct {
	*github.Client
	Repo repourl.Repository
	// Tokens is the source the client authenticates with.
	Tokens credentials.TokenSource
	// Budget is the rate-limit budget of the client's API host and
	// identity, shared by every client of both (see Budget.Pace).
	Budget *Budget

	versions  *hostVersions // what the pool learned of API versions per host
	apiOrigin string
	grants    *grants
	appKey    string // the App installation's token source, "" for a token

	loginMu    sync.Mutex
	login      string
	loginKnown bool

	// download fetches blobs GitHub redirects to (download.go).
	download *http.Client

	shared sharedValues // shared.go
}

// Client returns the shared client for repo with creds.
func (p *Pool) Client(repo repourl.Repository, creds credentials.Credentials, insecure bool) (*Client, error) {
	if err := creds.Validate(); err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s|%s|%t|%s", repo.APIBaseURL, repo.FullName(), insecure, creds.Fingerprint())
	if c, ok := p.clients.Get(key, clientAge); ok {
		return c, nil
	}
	c, err := p.newClient(repo, creds, insecure)
	if err != nil {
		return nil, err
	}
	safetext.Register(creds.Token)
	if creds.App != nil {
		safetext.Register(string(creds.App.PrivateKeyPEM))
	}
	p.clients.Put(key, c, maxClients, clientAge)
	return c, nil
}

func (p *Pool) newClient(repo repourl.Repository, creds credentials.Credentials, insecure bool) (*Client, error) {
	api, err := url.Parse(repo.APIBaseURL)
	if err != nil {
		return nil, fmt.Errorf("API URL %q: %w", repo.APIBaseURL, err)
	}
	budget := p.budget(repo.APIBaseURL, creds.Fingerprint())
	observed := observeTransport{base: p.transport(insecure), budget: budget, pool: p}
	base := versionTransport{hosts: &p.versions, base: retryTransport{clock: p.Clock, base: limitTransport{base: sentTransport{base: writeOnceTransport{base: observed}}}}}
	var tokens credentials.TokenSource = credentials.StaticToken(creds.Token)
	appKey := ""
	if creds.App != nil {
		appKey = p.appKey(repo, creds, insecure)
		tokens, err = p.appTokens(appKey, repo, creds, insecure, base)
		if err != nil {
			return nil, err
		}
	}
	hc := &http.Client{
		Transport:     &authTransport{base: base, api: api, tokens: tokens},
		CheckRedirect: sameOriginRedirects(api),
	}
	gh, err := github.NewClient(
		github.WithHTTPClient(hc),
		github.WithURLs(&repo.APIBaseURL, &repo.UploadURL),
		github.WithUserAgent(userAgent(p.Version)),
		// Rate limits are judged from GitHub's own answers by the callers,
		// on their clock: go-github's memory of them would refuse requests
		// on the wall clock without asking, which no injected clock moves.
		github.WithDisableRateLimitCheck(),
	)
	if err != nil {
		return nil, err
	}
	// An App installation acts as its bot, which GET /user does not name;
	// an installation token minted elsewhere (ghs_…) neither: no lookup.
	noLogin := creds.App != nil || strings.HasPrefix(creds.Token, "ghs_")
	return &Client{Client: gh, Repo: repo, Tokens: tokens, Budget: budget, loginKnown: noLogin, versions: &p.versions, apiOrigin: origin(api), grants: &p.grants, appKey: appKey, download: p.downloadClient(insecure)}, nil
}

// budget is the shared Budget of an API host and identity.
func (p *Pool) budget(apiBase, identity string) *Budget {
	key := apiBase + "|" + identity
	p.budgetMu.Lock()
	defer p.budgetMu.Unlock()
	if b, ok := p.budgets.Get(key, clientAge); ok {
		return b
	}
	b := NewBudget(p.Clock)
	p.budgets.Put(key, b, maxClients, clientAge)
	return b
}

// appTokens returns the shared installation token source for the App,
// scoped to the one repository the step acts on.
func (p *Pool) appTokens(key string, repo repourl.Repository, creds credentials.Credentials, insecure bool, base http.RoundTripper) (*credentials.InstallationTokenSource, error) {
	return p.tokens.Get(key, func() (*credentials.InstallationTokenSource, error) {
		return credentials.NewInstallationTokenSource(creds.App, p.exchanger(key, repo, creds.App.InstallationID, base))
	})
}

func (p *Pool) appKey(repo repourl.Repository, creds credentials.Credentials, insecure bool) string {
	return fmt.Sprintf("%s|%t|%s|%s", repo.APIBaseURL, insecure, creds.Fingerprint(), repo.FullName())
}

// exchanger trades a JWT for an installation token through go-github, so the
// exchange gets the same TLS, size cap and typed errors as every request.
func (p *Pool) exchanger(key string, repo repourl.Repository, installationID int64, base http.RoundTripper) credentials.ExchangeFunc {
	return func(ctx context.Context, jwt string) (string, time.Time, error) {
		api, _ := url.Parse(repo.APIBaseURL)
		hc := &http.Client{
			Transport:     &authTransport{base: base, api: api, tokens: credentials.StaticToken(jwt)},
			CheckRedirect: sameOriginRedirects(api),
		}
		gh, err := github.NewClient(github.WithHTTPClient(hc), github.WithURLs(&repo.APIBaseURL, &repo.UploadURL),
			github.WithUserAgent(userAgent(p.Version)))
		if err != nil {
			return "", time.Time{}, err
		}
		tok, _, err := gh.Apps.CreateInstallationToken(ctx, installationID, &github.InstallationTokenOptions{
			Repositories: []string{repo.Name},
		})
		if err != nil {
			return "", time.Time{}, Classify(err, fmt.Sprintf("exchanging the GitHub App JWT for an installation token (installation %d)", installationID), Hints{
				Forbidden: "the App installation must have access to " + repo.FullName() + " with actions permission",
				NotFound:  fmt.Sprintf("installation %d does not exist or does not belong to this App", installationID),
			})
		}
		if tok.GetToken() == "" {
			return "", time.Time{}, errors.New("the token exchange answered without a token")
		}
		p.grants.record(key, tok.Permissions)
		return tok.GetToken(), tok.GetExpiresAt().Time, nil
	}
}

// CloseIdleConnections closes the pool's idle connections (tests checking
// for leaks; a process shutting down).
func (p *Pool) CloseIdleConnections() {
	for _, t := range p.transports {
		t.CloseIdleConnections()
	}
	for _, c := range p.downloads {
		c.CloseIdleConnections()
	}
}

// transport returns the shared base transport for one TLS setting.
func (p *Pool) transport(insecure bool) *http.Transport {
	p.once.Do(func() {
		p.transports = map[bool]*http.Transport{}
		proxy := p.Proxy
		if proxy == nil {
			proxy = http.ProxyFromEnvironment
		}
		for _, skip := range []bool{false, true} {
			dial := p.DialContext
			if dial == nil {
				dial = guardedDialer(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second})
			}
			p.transports[skip] = &http.Transport{
				Proxy:                 proxyCredentials(guardedProxy(proxy, lookupHost)),
				DialContext:           dial,
				TLSClientConfig:       &tls.Config{RootCAs: p.RootCAs, InsecureSkipVerify: skip, MinVersion: tls.VersionTLS12}, //nolint:gosec // opt-in per step
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: responseHeaderTimeout,
				MaxIdleConnsPerHost:   maxIdleConnsPerHost,
				IdleConnTimeout:       90 * time.Second,
				ForceAttemptHTTP2:     true,
			}
		}
	})
	return p.transports[insecure]
}

// sameOriginRedirects follows a redirect only for a read, and only within
// the API's origin (scheme, host and port): GitHub redirects within it
// (renamed repositories). A redirect that leaves it, or that would send a
// request with a body again (a dispatch), is refused: credentials go only
// where they were issued for, and a dispatch is sent once.
func sameOriginRedirects(api *url.URL) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if m := via[0].Method; m != http.MethodGet && m != http.MethodHead {
			return fmt.Errorf("refusing to follow a redirect of a %s to %s: it would be sent again", m, redirectTarget(req.URL))
		}
		if !sameOrigin(req.URL, api) {
			return fmt.Errorf("refusing to follow a redirect from %s to another origin (%s)", origin(api), redirectTarget(req.URL))
		}
		return nil
	}
}

// redirectTarget names a redirect's target without its query, which may
// carry anything.
func redirectTarget(u *url.URL) string { return origin(u) + u.EscapedPath() }

func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// sameOrigin compares scheme, host and port (default ports made explicit).
func sameOrigin(u, api *url.URL) bool {
	return strings.EqualFold(u.Scheme, api.Scheme) && strings.EqualFold(u.Hostname(), api.Hostname()) && port(u) == port(api)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "http") {
		return "80"
	}
	return "443"
}

// LoginKnown reports whether Login would answer without a request.
func (c *Client) LoginKnown() bool {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	return c.loginKnown
}

// Login is the login of the user the client's token belongs to, or "" when
// that is not cheap to know: GitHub App credentials (an installation acts as
// its bot, which GET /user does not name) and installation tokens minted
// elsewhere (ghs_…). It costs one request, once per client.
//
// GitHub API docs: https://docs.github.com/rest/users/users#get-the-authenticated-user
func (c *Client) Login(ctx context.Context) string {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.loginKnown {
		return c.login
	}
	// One try: the filter narrows attribution, it is not needed for it, so
	// a failed lookup (any error) means no filter rather than a retry that
	// could hold up finding the run.
	u, _, err := c.Users.Get(ctx, "")
	if err == nil {
		c.login = u.GetLogin()
	}
	c.loginKnown = true
	return c.login
}
