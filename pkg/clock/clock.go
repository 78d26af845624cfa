// Package clock is the time source of the dispatcher, the run checker and
// the step runner. Production code uses System; tests use a Fake they set
// and advance, so that nothing in a test waits on the wall clock for the
// seconds a dispatch or a wait takes for real.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and pauses.
type Clock interface {
	// Now is the current local time.
	Now() time.Time
	// Sleep pauses for d, or until ctx ends (then it returns ctx's cause).
	Sleep(ctx context.Context, d time.Duration) error
}

// System is the real clock.
type System struct{}

// Now implements Clock.
func (System) Now() time.Time { return time.Now() }

// Sleep implements Clock.
func (System) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// Or is c, or System when c is nil: the zero value of a struct with a
// Clock field uses the real clock.
func Or(c Clock) Clock {
	if c == nil {
		return System{}
	}
	return c
}

// Fake is a clock that moves only when told to, or when someone sleeps on
// it: Sleep advances it by the pause at once, so a loop that sleeps between
// calls runs through hours of its schedule in microseconds.
type Fake struct {
	mu  sync.Mutex
	now time.Time
}

// NewFake returns a Fake set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now implements Clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// Set moves the clock to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
}

// Sleep implements Clock: it advances the clock by d and returns, unless
// ctx has ended.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if d > 0 {
		f.Advance(d)
	}
	return nil
}
