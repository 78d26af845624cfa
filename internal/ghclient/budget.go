package ghclient

import (
	"math"
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
//   - a primary budget down to its reserve (budgetReserve of the limit,
//     kept for dispatches, diagnoses and whatever else shares the token)
//     holds every call back until the reset;
//   - otherwise the recent rate of use (measured between answers at least
//     minRateSample apart, averaged over rateWindow, and fading while
//     nothing is used), sustained until the reset, must fit in the
//     remaining budget less the reserve: when it would not, every pause is
//     stretched by the factor it overshoots by, at most to maxStretch (the
//     next call measures again). At 5,000 an hour, a token used at 100 a
//     minute with 1,000 left and 30 minutes to go (3,000 projected against
//     500 available) gets its pauses stretched 6 times; 304 answers use
//     none of the budget and never stretch anything.
const (
	// budgetReserve is the share of the primary limit pacing keeps free.
	budgetReserve = 0.1
	// minRateSample is how long use must have been watched before its
	// rate is believed: a burst of a few requests is no trend.
	minRateSample = 10 * time.Second
	// rateWindow is how long a burst weighs on the rate of use: the first
	// reads of many runs at once are not what the next hour costs.
	rateWindow = time.Minute
	// maxStretch caps a stretched pause while budget is left: short
	// enough that the rate is measured again soon.
	maxStretch = 5 * time.Minute
	// maxPace caps any hold, so that a step is never held longer than an
	// hour (GitHub's primary window) by pacing alone.
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
	// The last sample the rate was measured at, and the rate (requests a
	// second; rated is false before a first measure in this window).
	lastAt        time.Time
	lastRemaining int
	rate          float64
	rated         bool
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
	switch dt := now.Sub(b.lastAt); {
	case !b.known || !r.Equal(b.reset) || remaining > b.lastRemaining:
		b.lastAt, b.lastRemaining, b.rated = now, remaining, false // a new window
	case dt >= minRateSample:
		inst := float64(b.lastRemaining-remaining) / dt.Seconds()
		if b.rated {
			a := 1 - math.Exp(-dt.Seconds()/rateWindow.Seconds())
			inst = b.rate + a*(inst-b.rate)
		}
		b.rate, b.rated, b.lastAt, b.lastRemaining = inst, true, now, remaining
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
	available := float64(b.remaining) - budgetReserve*float64(b.limit)
	switch {
	case toReset <= time.Second:
		return pace // the window is over: a fresh budget
	case available <= 0:
		return max(pace, min(toReset, maxPace))
	case !b.rated || b.rate <= 0:
		return pace
	}
	// Nothing used since the last sample fades the rate, as Observe would.
	rate := b.rate * math.Exp(-max(now.Sub(b.lastAt)-minRateSample, 0).Seconds()/rateWindow.Seconds())
	projected := rate * toReset.Seconds()
	if projected <= available {
		return pace
	}
	stretched := time.Duration(float64(planned) * projected / available)
	return max(pace, min(stretched, toReset, maxStretch))
}
