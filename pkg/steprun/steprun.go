// Package steprun runs the gha-* steps the way Kargo runs a promotion step,
// without importing Kargo: it takes what Kargo hands a step (project, alias,
// the evaluated config, the shared state, a way to get credentials) and
// returns what Kargo expects back (status, message, output, retry-after) and
// an error classified final or not. The Kargo module in kargo/ adapts this
// to Kargo's types; other engines can use it as it is.
package steprun

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/config"
	"github.com/kargo-gha/kargo-gha/pkg/credentials"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/repourl"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// Status is a step's status, with Kargo's names.
type Status string

// The statuses the gha-* steps report.
const (
	StatusRunning   Status = "Running"
	StatusSucceeded Status = "Succeeded"
	StatusFailed    Status = "Failed"
	StatusErrored   Status = "Errored"
)

// Context is what a step is handed.
type Context struct {
	// Project is the Kargo project, which is the namespace of its Secrets.
	Project string
	// Alias is the step's alias (its as:); its earlier output is under this
	// key in SharedState.
	Alias string
	// Config is the step's config block after expression evaluation.
	Config map[string]any
	// SharedState holds earlier steps' outputs by alias, including this
	// step's own from an earlier execution of the same promotion.
	SharedState map[string]any
	// Credentials returns the Git credentials held for repoURL, or nil.
	Credentials func(ctx context.Context, repoURL string) (*credentials.Credentials, error)
	// Secret returns the data of a Secret in the project namespace, for the
	// v1.8 format's credentials.secretName; nil when unavailable.
	Secret func(ctx context.Context, name string) (map[string]string, error)
}

// Result is what a step reports. Output numbers are int64, the only integer
// type Kargo's state can deep-copy.
type Result struct {
	Status     Status
	Message    string
	Output     map[string]any
	RetryAfter *time.Duration
}

// Runner runs both steps. Its parts are shared by every execution, so one
// Runner must live as long as the process: Kargo calls a step's factory for
// every execution, and the token cache and run correlation only work if the
// same Pool and Dispatcher serve them all.
type Runner struct {
	Pool       *ghclient.Pool
	Dispatcher *dispatch.Dispatcher
	Checker    *wait.Checker
}

// NewRunner returns a Runner with fresh shared parts.
func NewRunner() *Runner {
	return &Runner{Pool: &ghclient.Pool{}, Dispatcher: &dispatch.Dispatcher{}, Checker: &wait.Checker{}}
}

// errored is the result of a step that failed for a reason other than its
// business outcome. err keeps its class: final errors must not be retried.
func errored(err error) (Result, error) {
	return Result{Status: StatusErrored, Message: err.Error()}, err
}

// configError is a bad configuration: a terminal failure, as in Kargo's own
// steps.
func configError(err error) (Result, error) {
	return Result{Status: StatusFailed, Message: err.Error()}, failure.Final(err)
}

// client resolves the repository and credentials of either step's
// configuration. warning is set for the v1.8 format.
func (r *Runner) client(ctx context.Context, sc *Context, repoURL string, legacy *config.Legacy, insecure bool) (*ghclient.Client, string, error) {
	var (
		repo  repourl.Repository
		creds credentials.Credentials
		err   error
		warn  string
	)
	if legacy == nil {
		if repo, err = repourl.Parse(repoURL, repourl.Options{}); err != nil {
			return nil, "", failure.Final(err)
		}
		if creds, err = r.gitCredentials(ctx, sc, repoURL); err != nil {
			return nil, "", err
		}
	} else {
		if creds, err = legacyCredentials(ctx, sc, legacy.SecretName); err != nil {
			return nil, "", err
		}
		if repo, err = repourl.FromLegacy(legacy.Owner, legacy.Repo, creds.BaseURL, repourl.Options{}); err != nil {
			return nil, "", failure.Final(fmt.Errorf("credentials.secretName %q: %w", legacy.SecretName, err))
		}
		warn = fmt.Sprintf("the v1.8 configuration format (owner, repo, credentials) is deprecated: use repoURL: %s with Git credentials for it", repo.WebURL())
	}
	c, err := r.Pool.Client(repo, creds, insecure)
	if err != nil {
		return nil, "", failure.Final(err)
	}
	return c, warn, nil
}

func (r *Runner) gitCredentials(ctx context.Context, sc *Context, repoURL string) (credentials.Credentials, error) {
	if sc.Credentials == nil {
		return credentials.Credentials{}, failure.Final(errors.New("this step needs the access-credentials capability"))
	}
	c, err := sc.Credentials(ctx, repoURL)
	if err != nil {
		return credentials.Credentials{}, failure.Transient(fmt.Errorf("looking up Git credentials for %s: %w", repoURL, err))
	}
	if c == nil || (c.Token == "" && c.App == nil) {
		return credentials.Credentials{}, failure.Final(fmt.Errorf("no Git credentials for %s in project %s: create a Secret labelled %s: %s with repoURL and a token (password) or GitHub App settings",
			repoURL, sc.Project, credentials.CredTypeLabel, credentials.CredTypeGit))
	}
	if c.Source == "" {
		c.Source = "Kargo Git credentials for " + repoURL
	}
	return *c, nil
}

func legacyCredentials(ctx context.Context, sc *Context, name string) (credentials.Credentials, error) {
	if sc.Secret == nil {
		return credentials.Credentials{}, failure.Final(errors.New("the v1.8 format's credentials.secretName needs the access-control-plane capability"))
	}
	data, err := sc.Secret(ctx, name)
	if err != nil {
		return credentials.Credentials{}, failure.Transient(fmt.Errorf("reading Secret %s/%s (credentials.secretName): %w", sc.Project, name, err))
	}
	if data == nil {
		return credentials.Credentials{}, failure.Final(fmt.Errorf("no Secret %s/%s (credentials.secretName)", sc.Project, name))
	}
	c, err := credentials.FromLegacySecret([]credentials.Secret{{Name: name, Namespace: sc.Project, Data: data}}, sc.Project, name)
	if err != nil {
		return c, failure.Final(err)
	}
	return c, nil
}

// ownOutput is this step's output from an earlier execution of the same
// promotion, or nil.
func ownOutput(sc *Context) map[string]any {
	if sc.Alias == "" || sc.SharedState == nil {
		return nil
	}
	out, _ := sc.SharedState[sc.Alias].(map[string]any)
	return out
}
