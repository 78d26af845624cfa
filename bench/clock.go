package main

import (
	"context"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// newClock is the time of a run: the system clock at speed 1 (the report),
// a clock running speed times faster otherwise (the short setting, so that
// the settle of 204-mode dispatches takes a fraction of a second in CI).
func newClock(speed float64) clock.Clock {
	if speed <= 1 {
		return clock.System{}
	}
	return &scaledClock{start: time.Now(), speed: speed}
}

// scaledClock runs speed times faster than the wall clock, for every
// goroutine alike. clock.Fake does not fit the concurrent scenarios: its
// Sleep moves the shared clock at once, so the clock runs as fast as the
// busiest loop spins. A dispatch held back by another without a key
// retries each second without a request, and spins the clock past the
// hold long before the holder has made the listings that decide its run:
// the held dispatches are then sent while the first is still deciding,
// which is not what the scenario measures, and every deadline on the
// clock depends on how the goroutines happen to be scheduled.
type scaledClock struct {
	start time.Time
	speed float64
}

func (c *scaledClock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.start)) * c.speed))
}

func (c *scaledClock) Sleep(ctx context.Context, d time.Duration) error {
	return clock.System{}.Sleep(ctx, time.Duration(float64(d)/c.speed))
}
