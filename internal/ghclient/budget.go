package ghclient

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// The pacing rule. Every answer from GitHub updates the Budget of its API
// host and identity (one token, one App installation); every step call on
// them asks Pace how much longer than it planned to wait before its next
// call. All the steps sharing a token read the same Budget, so they slow
// down together:
//
//   - a secondary limit (403/429 with Retry-After, or 429) holds every call
//     back until its Retry-After has passed (a minute when it names none);
//   - a primary limit spent (X-RateLimit-Remaining: 0) holds every call
//     back until X-RateLimit-Reset;
//   - otherwise the rate the budget was used at since the reset window was
//     first seen, sustained until the reset, must fit in the remaining
//     budget less a reserve (budgetReserve of the limit, for dispatches,
//     diagnoses and whatever else shares the token): when it would not,
//     every pause is stretched by the factor it overshoots by, capped at
//     the time to the reset. At 5,000 an hour, a token used at 100 a minute
//     with 1,000 left and 30 minutes to go (3,000 projected against 500
//     available) gets its pauses stretched 6 times; 304 answers use none of
//     the budget and never stretch anything.
const (
	// budgetReserve is the share of the primary limit pacing keeps free.
	budgetReserve = 0.1
	// minRateSample is how long use must have been watched before its
	// rate is believed: a burst of a few requests is no trend.
	minRateSample = 10 * time.Second
	// maxPace caps any stretch, so that a step is never held longer than
	// an hour (GitHub's primary window) by pacing alone.
	maxPace = time.Hour
)

// Budget is what GitHub's answers said of one host's and identity's rate
// limits. It is safe for concurrent use.
type Budget struct {
	clock clock.Clock

	mu sync.Mutex
	// The primary limit as last answered; known is false before any answer
	// carried it (Enterprise Server without rate limits never does).
	known            bool
	limit, remaining int
	reset            time.Time
	// The first sample of the current reset window: the rate of use is
	// measured from it.
	firstAt        time.Time
	firstRemaining int
	// secondaryUntil: a secondary limit holds calls back until then.
	secondaryUntil time.Time
}

// NewBudget returns an empty Budget on c (the system clock when nil).
func NewBudget(c clock.Clock) *Budget { return &Budget{clock: clock.Or(c)} }

// Observe learns from one answer's status and headers.
func (b *Budget) Observe(resp *http.Response) {
	if b == nil || resp == nil {
		return
	}
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if isRateLimited(resp) && resp.Header.Get("X-RateLimit-Remaining") != "0" {
		wait := secondaryDefaultWait
		if secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && secs >= 0 {
			wait = time.Duration(secs) * time.Second
		}
		if until := now.Add(wait); until.After(b.secondaryUntil) {
			b.secondaryUntil = until
		}
	}
	limit, err1 := strconv.Atoi(resp.Header.Get("X-RateLimit-Limit"))
	remaining, err2 := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining"))
	reset, err3 := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || limit <= 0 {
		return
	}
	r := time.Unix(reset, 0)
	if !b.known || !r.Equal(b.reset) || remaining > b.firstRemaining {
		b.firstAt, b.firstRemaining = now, remaining // a new window
	}
	b.known, b.limit, b.remaining, b.reset = true, limit, remaining, r
}

// Remaining is the primary budget left as last answered, and whether any
// answer said.
func (b *Budget) Remaining() (int, bool) {
	if b == nil {
		return 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.remaining, b.known
}

// Pace is how long a caller that planned to wait planned before its next
// request should wait instead, by the pacing rule above: planned when the
// budget allows it, longer when it does not.
func (b *Budget) Pace(planned time.Duration) time.Duration {
	if b == nil {
		return planned
	}
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	pace := planned
	if hold := b.secondaryUntil.Sub(now); hold > pace {
		pace = hold
	}
	if !b.known {
		return pace
	}
	toReset := b.reset.Sub(now) + time.Second // GitHub's clock and ours differ
	switch {
	case toReset <= time.Second:
		return pace // the window is over: a fresh budget
	case b.remaining <= 0:
		return max(pace, min(toReset, maxPace))
	}
	watched := now.Sub(b.firstAt)
	used := b.firstRemaining - b.remaining
	if watched < minRateSample || used <= 0 {
		return pace
	}
	available := float64(b.remaining) - budgetReserve*float64(b.limit)
	projected := float64(used) / watched.Seconds() * toReset.Seconds()
	if available <= 0 {
		return max(pace, min(toReset, maxPace))
	}
	if projected <= available {
		return pace
	}
	stretched := time.Duration(float64(planned) * projected / available)
	return max(pace, min(stretched, toReset, maxPace))
}
