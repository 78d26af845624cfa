package step

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// Answer is one HTTP answer from GitHub as an Observer sees it: the API
// host, the operation (dispatch, list-workflow-runs, get-run, ...), the
// status (304: unchanged) and X-RateLimit-Remaining (-1 when absent). It
// holds no URL and no credentials.
type Answer = ghclient.Answer

// Observer is told what the steps do, for metrics (the Kargo module's
// Prometheus metrics, the command line's --verbose counts). Its methods
// must be fast and safe for concurrent use.
type Observer interface {
	// Answered: every answer from GitHub, each try of a retried request.
	Answered(Answer)
	// Dispatched: a dispatch's run became known, and how (run-details,
	// correlation-key, run-listing, earlier-dispatch).
	Dispatched(method string)
	// Refused: attribution refused to guess (several, key-reused,
	// uncertain, late, clock).
	Refused(reason string)
	// Called: one step call (dispatch or wait) returned status after d.
	Called(stepKind string, status Status, d time.Duration)
}

// Step kinds as Observer.Called names them.
const (
	KindDispatch = "dispatch"
	KindWait     = "wait"
)

// Observe makes o see every step call and every answer from GitHub. Call
// it before the Runner's first call.
func (r *Runner) Observe(o Observer) {
	r.Observer = o
	r.Clients.Observe = o.Answered
}

// Dispatch runs gha-dispatch-workflow (see dispatchStep), paced and
// observed.
func (r *Runner) Dispatch(ctx context.Context, sc *Context) (Result, error) {
	return r.paced(ctx, sc, KindDispatch, r.dispatchStep)
}

// Wait runs gha-wait-for-workflow (see waitStep), paced and observed.
func (r *Runner) Wait(ctx context.Context, sc *Context) (Result, error) {
	return r.paced(ctx, sc, KindWait, r.waitStep)
}

// paced runs one step call, stretches a Running result's RetryAfter by the
// rate-limit budget of its host and identity (ghclient.Budget.Pace: the
// steps sharing a token slow down together before GitHub refuses them),
// and tells the Observer.
func (r *Runner) paced(ctx context.Context, sc *Context, kind string, call func(context.Context, *Context) (Result, error)) (Result, error) {
	start := clock.Or(r.Clock).Now()
	res, err := call(ctx, sc)
	if res.Status == StatusRunning && sc.budget != nil {
		res.RetryAfter = pace(sc.budget, res.RetryAfter)
	}
	if o := r.Observer; o != nil {
		o.Called(kind, res.Status, clock.Or(r.Clock).Now().Sub(start))
		if m, ok := res.Output[outAttribution].(string); ok && kind == KindDispatch && res.Status == StatusSucceeded {
			o.Dispatched(m)
		}
		var ae *dispatch.AmbiguousError
		if errors.As(err, &ae) {
			o.Refused(string(ae.Reason))
		}
	}
	return res, err
}

// pace is planned as the budget allows: a step without a RetryAfter (the
// caller's default interval) is taken to plan wait.DefaultPollInterval, and
// keeps none unless the budget stretches it.
func pace(b *ghclient.Budget, planned *time.Duration) *time.Duration {
	p := wait.DefaultPollInterval
	if planned != nil {
		p = *planned
	}
	got := b.Pace(p)
	if got == p {
		return planned
	}
	return &got
}

// Counts is an Observer that counts, for the command line's --verbose
// summary. It is safe for concurrent use.
type Counts struct {
	mu          sync.Mutex
	requests    map[string]int // "endpoint status"
	notModified int
	remaining   map[string]int // by host
	dispatched  map[string]int
	refused     map[string]int
	calls       map[string]int
	callTime    map[string]time.Duration
}

// Answered implements Observer.
func (c *Counts) Answered(a Answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	c.requests[fmt.Sprintf("%s %d", a.Endpoint, a.Status)]++
	if a.Status == 304 {
		c.notModified++
	}
	if a.RateRemaining >= 0 {
		c.remaining[a.Host] = a.RateRemaining
	}
}

// Dispatched implements Observer.
func (c *Counts) Dispatched(method string) { c.add(func() { c.dispatched[method]++ }) }

// Refused implements Observer.
func (c *Counts) Refused(reason string) { c.add(func() { c.refused[reason]++ }) }

// Called implements Observer.
func (c *Counts) Called(kind string, status Status, d time.Duration) {
	c.add(func() {
		c.calls[kind+" "+string(status)]++
		c.callTime[kind] += d
	})
}

func (c *Counts) add(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	f()
}

func (c *Counts) init() {
	if c.requests == nil {
		c.requests, c.remaining, c.dispatched, c.refused = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
		c.calls, c.callTime = map[string]int{}, map[string]time.Duration{}
	}
}

// Lines are the counts, one fact a line, in a stable order: requests by
// endpoint and answer, 304s (which cost no rate limit), the rate limit left
// by host, dispatches by how the run was found, refusals, and step calls.
func (c *Counts) Lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	var out []string
	total := 0
	for _, n := range c.requests {
		total += n
	}
	out = append(out, fmt.Sprintf("requests: %d (%d answered 304, which cost no rate limit)", total, c.notModified))
	out = append(out, sorted("requests", c.requests)...)
	out = append(out, sorted("rate limit remaining", c.remaining)...)
	out = append(out, sorted("dispatches", c.dispatched)...)
	out = append(out, sorted("refusals", c.refused)...)
	out = append(out, sorted("step calls", c.calls)...)
	for _, k := range slices.Sorted(mapKeys(c.callTime)) {
		out = append(out, fmt.Sprintf("step call time %s: %s", k, c.callTime[k].Round(time.Millisecond)))
	}
	return out
}

func sorted(what string, m map[string]int) []string {
	var out []string
	for _, k := range slices.Sorted(mapKeys(m)) {
		out = append(out, fmt.Sprintf("%s %s: %d", what, strings.TrimSpace(k), m[k]))
	}
	return out
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
