package step

import (
	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// The library's view of the plumbing: what a caller of pkg/step,
// pkg/dispatch or pkg/wait needs to hold or fill in, and nothing more.
type (
	// Client is a GitHub API client bound to one repository and its
	// credentials; pkg/dispatch and pkg/wait act through it.
	Client = ghclient.Client
	// ClientPool shares clients, connections and App installation tokens
	// between calls; one should serve a whole process.
	ClientPool = ghclient.Pool
	// Credentials are a token or a GitHub App installation.
	Credentials = credentials.Credentials
	// App is a GitHub App installation and its private key.
	App = credentials.App
	// URLOptions say which repository URLs are accepted.
	URLOptions = repourl.Options
)

// ClientOptions configure NewClient.
type ClientOptions struct {
	// Pool shares clients between calls; a fresh one when nil.
	Pool *ClientPool
	// InsecureSkipTLSVerify skips TLS verification (test servers only).
	InsecureSkipTLSVerify bool
	// AllowHTTP accepts http:// repository URLs.
	AllowHTTP bool
}

// NewClient returns the client for the repository at repoURL (github.com,
// a ghe.com subdomain or an Enterprise Server, in any URL form the steps
// accept) with creds.
func NewClient(repoURL string, creds Credentials, opts ClientOptions) (*Client, error) {
	repo, err := repourl.Parse(repoURL, repourl.Options{AllowHTTP: opts.AllowHTTP})
	if err != nil {
		return nil, err
	}
	pool := opts.Pool
	if pool == nil {
		pool = &ClientPool{}
	}
	return pool.Client(repo, creds, opts.InsecureSkipTLSVerify)
}

// IsFinal reports whether an error of a step, a dispatch or a wait should
// not be retried: retrying cannot help, or could dispatch twice.
func IsFinal(err error) bool { return failure.IsFinal(err) }
