// Package step is the one layer that turns a gha-* step's config into
// GitHub requests, for every entry point: the Kargo promotion steps (kargo/
// steps) and the command line (internal/cli) are thin adapters over it.
//
// A step call does one piece of work and returns in bounded time: a
// configuration parsed once, credentials looked up through the caller's
// lookups, at most one GitHub round trip (up to two for the first
// dispatch to a server that refuses an API version or return_run_details;
// for a run that has ended, the reads that describe it: its failed jobs
// and their logs, or its outputs artifact), and a Result with Kargo's
// status names. A step that must go on returns Running with RetryAfter and its
// state in Output; the caller calls again with that state (Kargo saves it in
// the Promotion, the command line keeps it in memory and loops). Nothing
// here sleeps.
package step

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
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

// DefaultCallTimeout bounds one step call's GitHub round trip when the
// Runner does not say: Kargo's reconcile workers must not be held.
const DefaultCallTimeout = 4 * time.Second

// Context is what a step call is handed.
type Context struct {
	// Project is the Kargo project; Promotion the promotion's name. With
	// Alias they name the dispatch, so that its correlation key is the same
	// on every call and after a controller restart.
	Project   string
	Promotion string
	// Alias is the step's alias (its as:); its earlier output is under this
	// key in SharedState.
	Alias string
	// Config is the step's config block after expression evaluation.
	Config map[string]any
	// SharedState holds earlier steps' outputs by alias, including this
	// step's own from the previous call of the same promotion.
	SharedState map[string]any
	// Credentials returns the Git credentials held for repoURL, or nil.
	Credentials func(ctx context.Context, repoURL string) (*Credentials, error)
	// LegacyCredentials returns the credentials of the v1.8 format's
	// credentials.secretName (with BaseURL for an Enterprise Server), or nil.
	LegacyCredentials func(ctx context.Context, secretName string) (*Credentials, error)
	// SavesState is true when the caller persists Output between calls and
	// may restart between them (Kargo). The dispatch step then returns once
	// it has recorded its intent, so that the intent is saved before the
	// request leaves; without it (the command line) it goes on in the same
	// call.
	SavesState bool
	// Log receives progress for people and operators: a sentence as the
	// message, the dispatch's or the run's facts as attributes (workflow,
	// ref, attempt, phase, runID), warnings at Warn; nil drops them.
	// Messages and string attributes are cleaned before they are logged.
	Log *slog.Logger
	// CorrelationKey, when set, is the dispatch's correlation key (the
	// command line's --correlation-id); otherwise it derives from Project,
	// Promotion and Alias, or is random when those are empty.
	CorrelationKey string
	// Settle, when set, overrides the Dispatcher's settle for this
	// dispatch (the command line's --settle).
	Settle time.Duration

	// budget is the rate-limit budget of the call's host and identity,
	// once its client is known: it paces the call's RetryAfter.
	budget *ghclient.Budget
}

// Result is what a step call reports. Output holds only JSON types with
// int64 numbers, which Kargo's state can deep-copy; Message is safe to show
// (no control characters, no secrets).
type Result struct {
	Status     Status
	Message    string
	Output     map[string]any
	RetryAfter *time.Duration
}

// Runner runs both steps. Its parts are shared by every call, so one Runner
// should live as long as the process: the token cache, the run attribution
// and the memory of which dispatches this process recorded only work if the
// same ones serve every call.
type Runner struct {
	Clients    *ClientPool
	Dispatcher *dispatch.Dispatcher
	Checker    *wait.Checker
	// URLOptions say which repository URLs are accepted (--allow-http).
	URLOptions URLOptions
	// CallTimeout bounds one call's GitHub round trip; DefaultCallTimeout
	// when zero.
	CallTimeout time.Duration
	// OutageBudget is how long the wait step rides out GitHub failing
	// before it gives up; DefaultOutageBudget when zero.
	OutageBudget time.Duration
	// NotFoundGrace is how long the wait step retries a 404 for a run it
	// has never seen; DefaultNotFoundGrace when zero.
	NotFoundGrace time.Duration
	// Clock is the steps' time source (firstCheck, outage budget, 404
	// grace, the command line's pauses); the system clock when nil. The
	// Dispatcher and Checker have their own, which NewRunner sets to the
	// same. Tests share a fake one with the simulator.
	Clock clock.Clock
	// Observer, when set, is told what the steps do (metrics); see
	// Runner.Observe, which also shows it every answer from GitHub.
	Observer Observer
}

// NewRunner returns a Runner with fresh shared parts.
func NewRunner() *Runner {
	return NewRunnerWithClock(nil)
}

// NewRunnerWithClock returns a Runner with fresh shared parts, all on c
// (the system clock when nil).
func NewRunnerWithClock(c clock.Clock) *Runner {
	return &Runner{Clients: &ghclient.Pool{}, Dispatcher: &dispatch.Dispatcher{Clock: c}, Checker: &wait.Checker{Clock: c}, Clock: c}
}

// call bounds one step call's work.
func (r *Runner) call(ctx context.Context) (context.Context, context.CancelFunc) {
	d := r.CallTimeout
	if d <= 0 {
		d = DefaultCallTimeout
	}
	return context.WithTimeout(ctx, d)
}

// target is the repository and client a step acts on.
type target struct {
	client *ghclient.Client
	creds  credentials.Credentials
	// warning is set for the v1.8 format.
	warning string
}

// target resolves the repository and credentials of either step's
// configuration: repo parsed from repoURL, or for the v1.8 format from
// owner, repo and the Secret's baseURL.
func (r *Runner) target(ctx context.Context, sc *Context, repo repourl.Repository, repoURL string, legacy *config.Legacy, insecure bool) (*target, error) {
	var (
		creds *credentials.Credentials
		err   error
		warn  string
	)
	if legacy == nil {
		if sc.Credentials == nil {
			return nil, failure.Final(errors.New("this step needs the access-credentials capability"))
		}
		if creds, err = sc.Credentials(ctx, repoURL); err != nil {
			return nil, keepClass(fmt.Errorf("looking up Git credentials for %s: %w", repoURL, err))
		}
		if creds == nil {
			return nil, failure.Final(fmt.Errorf("no Git credentials for %s in project %s: create a Secret labelled %s: %s with repoURL: %s and either username + password (a personal access token as the password) or githubAppClientID (or githubAppID), githubAppInstallationID and githubAppPrivateKey",
				repoURL, sc.Project, credentials.CredTypeLabel, credentials.CredTypeGit, repoURL))
		}
	} else {
		if sc.LegacyCredentials == nil {
			return nil, failure.Final(errors.New("the v1.8 format's credentials.secretName needs the access-control-plane capability"))
		}
		if creds, err = sc.LegacyCredentials(ctx, legacy.SecretName); err != nil {
			return nil, keepClass(fmt.Errorf("reading the credentials of Secret %s (credentials.secretName): %w", legacy.SecretName, err))
		}
		if creds == nil {
			return nil, failure.Final(fmt.Errorf("no Secret %s/%s (credentials.secretName)", sc.Project, legacy.SecretName))
		}
		if repo, err = repourl.FromLegacy(legacy.Owner, legacy.Repo, creds.BaseURL, r.URLOptions); err != nil {
			return nil, failure.Final(fmt.Errorf("credentials.secretName %q: %w", legacy.SecretName, err))
		}
		warn = fmt.Sprintf("the v1.8 configuration format (owner, repo, credentials) is deprecated: use repoURL: %s with Git credentials for it", repo.WebURL())
	}
	c, err := r.Clients.Client(repo, *creds, insecure)
	if err != nil {
		return nil, failure.Final(err)
	}
	sc.budget = c.Budget
	return &target{client: c, creds: *creds, warning: warn}, nil
}

// keepClass keeps a lookup error's class when the lookup gave one (the
// command line's lookups say "final"), else makes it transient: a cluster
// that did not answer may answer next time.
func keepClass(err error) error {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return err
	}
	return failure.Transient(err)
}

// running asks to be called again after d.
func running(msg string, out map[string]any, d time.Duration) Result {
	return Result{Status: StatusRunning, Message: safetext.Clean(msg), Output: cleanOutput(out), RetryAfter: &d}
}

// errored is a call that failed for a reason other than the step's
// business outcome; err keeps its class (final errors must not be retried).
// out is the step's state, which Kargo saves even on error.
func errored(err error, out map[string]any) (Result, error) {
	return Result{Status: StatusErrored, Message: safetext.Clean(err.Error()), Output: cleanOutput(out)}, err
}

// failed is a business failure: final, shown as is.
func failed(err error, out map[string]any) (Result, error) {
	return Result{Status: StatusFailed, Message: safetext.Clean(err.Error()), Output: cleanOutput(out)}, failure.Final(err)
}

// succeeded is a step that ended as it should.
func succeeded(msg string, out map[string]any) Result {
	return Result{Status: StatusSucceeded, Message: safetext.Clean(msg), Output: cleanOutput(out)}
}

// cleanOutput is what of out later steps, Kargo's status and people may
// see: every string cleaned as messages are (secrets redacted, control
// characters removed). A step's own saved state is left as it was written,
// so that it reads back exactly; its free text is cleaned where it is made.
func cleanOutput(out map[string]any) map[string]any {
	if out == nil {
		return nil
	}
	c := make(map[string]any, len(out))
	for k, v := range out {
		if k == outDispatch || k == outWait {
			c[k] = v
			continue
		}
		c[k] = safetext.CleanValue(v)
	}
	return c
}

// ownOutput is this step's output from an earlier call of the same
// promotion, or nil.
func ownOutput(sc *Context) map[string]any {
	if sc.SharedState == nil {
		return nil // Kargo keys a step without an alias by ""; so do we
	}
	out, _ := sc.SharedState[sc.Alias].(map[string]any)
	return out
}

// log writes msg at level with attrs (key, value pairs), cleaned.
func (sc *Context) log(level slog.Level, msg string, attrs ...any) {
	if sc.Log == nil {
		return
	}
	for i, a := range attrs {
		if s, ok := a.(string); ok {
			attrs[i] = safetext.Clean(s)
		}
	}
	sc.Log.Log(context.Background(), level, safetext.Clean(msg), attrs...)
}

// withWarning appends the v1.8 deprecation warning to a message.
func (t *target) withWarning(msg string) string {
	if t.warning == "" {
		return msg
	}
	return msg + "; " + t.warning
}

// WithURLOptions returns a Runner that shares r's parts and accepts
// repository URLs as opts say.
func (r *Runner) WithURLOptions(opts URLOptions) *Runner {
	c := *r
	c.URLOptions = opts
	return &c
}
