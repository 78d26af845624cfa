// Package wait checks and waits for a GitHub Actions workflow run: whether
// it is still running, finished as expected, or finished otherwise. Each
// check is one conditional request, so an unchanged run costs no rate limit;
// a process following several runs of one workflow reads them from one
// shared listing of the workflow (shared.go).
package wait

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
)

// Outcome is what one check of a run found.
type Outcome int

const (
	// Running: the run is queued, requested, waiting, pending or in
	// progress, or completed without a conclusion yet (see Unconcluded).
	Running Outcome = iota
	// Succeeded: the run completed, with the expected conclusion or with
	// none expected.
	Succeeded
	// Mismatched: the run completed with another conclusion than expected,
	// or without one for longer than ConclusionGrace. This is final: a
	// finished run does not change.
	Mismatched
)

// ConclusionGrace is how long a run may show completed without a
// conclusion before that counts as a failure: GitHub can set the status a
// moment before the conclusion, but a run that never gets one did not
// succeed.
const ConclusionGrace = 30 * time.Second

func (o Outcome) String() string {
	return [...]string{"running", "succeeded", "mismatched"}[o]
}

// Status is one check's answer.
type Status struct {
	RunID      int64
	Outcome    Outcome
	Status     string // GitHub's status: queued, in_progress, waiting, completed, ...
	Conclusion string // set once completed
	HTMLURL    string
	// RunAttempt grows when someone re-runs the run.
	RunAttempt int64
	// Expected is the conclusion that was expected ("" for any).
	Expected string
	// FailedJobs, after Diagnose, names what failed in a Mismatched run.
	FailedJobs []FailedJob
	// MoreFailed counts failed jobs beyond FailedJobs.
	MoreFailed int
	// HeadSHA and HeadBranch are the commit and branch the run builds
	// (HeadSHA empty when the server's is not a commit ID).
	HeadSHA, HeadBranch string
}

// Err is the failure a Mismatched status stands for, nil otherwise. After
// Diagnose it names the failed jobs and their first failed steps.
func (s *Status) Err() error {
	if s.Outcome != Mismatched {
		return nil
	}
	msg := fmt.Sprintf("run %d finished %q (expected %q)", s.RunID, s.Conclusion, s.Expected)
	if s.Conclusion == "" {
		msg = fmt.Sprintf("run %d completed without a conclusion (still none after %s): that is not a success", s.RunID, ConclusionGrace)
		if s.Expected != "" {
			msg += fmt.Sprintf(" (expected %q)", s.Expected)
		}
	}
	for i, j := range s.FailedJobs {
		if i == 0 {
			msg += ": " + j.withExcerpt()
		} else {
			msg += "; " + j.withExcerpt()
		}
	}
	if s.MoreFailed > 0 {
		msg += fmt.Sprintf("; %d more jobs failed", s.MoreFailed)
	}
	if len(s.FailedJobs) == 0 {
		msg += ": " + s.HTMLURL
	}
	return failure.Final(errors.New(msg))
}

// Unconcluded reports a run that says completed but names no conclusion:
// Check reports it Running, as GitHub may add the conclusion a moment later.
func (s *Status) Unconcluded() bool { return s.Status == "completed" && s.Conclusion == "" }

// HoldUnconcluded keeps the time an Unconcluded run was first seen, and
// fails it once ConclusionGrace has passed since: given when it was first
// seen so (zero if not before), it returns that time (now when just now,
// zero when st is not Unconcluded) and makes st Mismatched past the grace.
func (s *Status) HoldUnconcluded(since, now time.Time) time.Time {
	switch {
	case !s.Unconcluded():
		return time.Time{}
	case since.IsZero():
		since = now
	}
	if now.Sub(since) >= ConclusionGrace {
		s.Outcome = Mismatched
	}
	return since
}

// Checker checks runs. It remembers each run's last answer and ETag so that
// the next check is a conditional request; one Checker should serve a whole
// process. It is safe for concurrent use.
type Checker struct {
	// Clock paces Wait; nil is the system clock.
	Clock clock.Clock
	// ListingAge is how old a shared workflow listing may be and still
	// answer a check (see shared.go); DefaultListingAge when zero.
	ListingAge time.Duration
	// PerRun reads every run on its own, never from a shared listing: how
	// waiting cost before shared listings (benchmarks compare the two).
	PerRun bool

	mu     sync.Mutex
	cache  map[string]cached
	shared listings
}

func (c *Checker) clock() clock.Clock { return clock.Or(c.Clock) }

type cached struct {
	etag string
	run  *github.WorkflowRun
}

// maxCachedRuns bounds the memory of a long-lived Checker (a controller
// waiting on many runs over weeks); beyond it the cache starts afresh.
const maxCachedRuns = 10000

// Check looks at the run once. expected is a conclusion or "" for any.
func (c *Checker) Check(ctx context.Context, client *ghclient.Client, runID int64, expected string) (*Status, error) {
	run, err := c.read(ctx, client, runID)
	if err != nil {
		return nil, err
	}
	st := &Status{RunID: runID, Status: run.GetStatus(), Conclusion: run.GetConclusion(), HTMLURL: run.GetHTMLURL(), RunAttempt: int64(run.GetRunAttempt()), Expected: expected}
	if err := checkRun(client, run, runID); err != nil {
		return nil, err
	}
	st.HeadSHA, st.HeadBranch = dispatch.HeadOf(run)
	switch {
	case st.Status != "completed", st.Unconcluded():
		st.Outcome = Running
	case expected == "" || st.Conclusion == expected:
		st.Outcome = Succeeded
	default:
		st.Outcome = Mismatched
	}
	return st, nil
}

// get reads the run with a conditional request.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run
func (c *Checker) get(ctx context.Context, client *ghclient.Client, runID int64) (*github.WorkflowRun, error) {
	key := runKey(client, runID)
	u := fmt.Sprintf("repos/%s/%s/actions/runs/%d", url.PathEscape(client.Repo.Owner), url.PathEscape(client.Repo.Name), runID)
	req, err := client.NewRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	prev, ok := c.cache[key]
	c.mu.Unlock()
	if ok && prev.etag != "" {
		req.Header.Set("If-None-Match", prev.etag)
	}
	var run github.WorkflowRun
	resp, err := client.Do(req, &run)
	if ghclient.StatusCode(err) == http.StatusNotModified && ok {
		return prev.run, nil
	}
	if err != nil {
		return nil, ghclient.Classify(err, fmt.Sprintf("reading workflow run %d of %s", runID, client.Repo.FullName()), ghclient.Hints{
			NotFound:  fmt.Sprintf("run %d does not exist in %s, or the credentials cannot see the repository", runID, client.Repo.WebURL()),
			Forbidden: "the credentials need the actions:read permission",
		})
	}
	c.mu.Lock()
	if c.cache == nil || len(c.cache) >= maxCachedRuns {
		c.cache = map[string]cached{}
	}
	c.cache[key] = cached{etag: resp.Header.Get("ETag"), run: &run}
	c.mu.Unlock()
	return &run, nil
}

// Forget drops what the Checker remembers of a run (once it has finished).
func (c *Checker) Forget(client *ghclient.Client, runID int64) {
	c.mu.Lock()
	prev := c.cache[runKey(client, runID)]
	delete(c.cache, runKey(client, runID))
	c.mu.Unlock()
	c.unfollow(client, prev.run)
}

// DefaultPollInterval is Wait's pause between checks when none is given:
// runs take minutes; a check every 10 s reports the end promptly and, with
// conditional requests, costs nothing meanwhile.
const DefaultPollInterval = 10 * time.Second

// Options shape Wait.
type Options struct {
	// Expected is the conclusion to expect ("" for any).
	Expected string
	// PollInterval is the pause between checks.
	PollInterval time.Duration
	// OnStatus, when set, is called with every check's status.
	OnStatus func(*Status)
}

// Wait checks the run every PollInterval (on c.Clock) until it completes
// or ctx ends. Transient failures of a check (5xx, network, rate limits) are
// retried at the next interval, or after the rate limit's wait when that is
// longer: reading a run has no side effect. A run that stays completed
// without a conclusion for ConclusionGrace fails. It returns the final
// status; a Mismatched status comes with its final error.
func (c *Checker) Wait(ctx context.Context, client *ghclient.Client, runID int64, opts Options) (*Status, error) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	clk := clock.Or(c.Clock)
	defer c.Forget(client, runID)
	var (
		last             *Status
		lastErr          error
		unconcludedSince time.Time
	)
	for {
		st, err := c.Check(ctx, client, runID, opts.Expected)
		pause := opts.PollInterval
		switch {
		case err != nil && ctx.Err() != nil:
			return last, waitStopped(ctx, runID, last)
		case err != nil && failure.IsFinal(err):
			return nil, err
		case err != nil:
			lastErr = err
			if ra, ok := ghclient.RetryAfter(err); ok {
				pause = max(pause, ra)
			}
		default:
			last, lastErr = st, nil
			unconcludedSince = st.HoldUnconcluded(unconcludedSince, clk.Now())
			if opts.OnStatus != nil {
				opts.OnStatus(st)
			}
			if st.Outcome != Running {
				return st, st.Err()
			}
		}
		if clk.Sleep(ctx, pause) != nil {
			return last, stoppedAfter(ctx, runID, last, lastErr)
		}
	}
}

// stoppedAfter is waitStopped, naming the last check's failure if any.
func stoppedAfter(ctx context.Context, runID int64, last *Status, lastErr error) error {
	if lastErr != nil {
		return failure.Transient(fmt.Errorf("%w (last check failed: %v)", waitStopped(ctx, runID, last), lastErr))
	}
	return waitStopped(ctx, runID, last)
}

// waitStopped explains why waiting ended before the run did. The run goes
// on; waiting again may see it finish, hence transient.
func waitStopped(ctx context.Context, runID int64, last *Status) error {
	state := "its status is unknown"
	if last != nil {
		state = fmt.Sprintf("it was %s: %s", last.Status, last.HTMLURL)
	}
	return failure.Transient(fmt.Errorf("stopped waiting for workflow run %d (%v); the run goes on, %s", runID, context.Cause(ctx), state))
}
