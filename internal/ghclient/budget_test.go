package ghclient

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

func answer(status, limit, remaining int, reset time.Time, retryAfter string) *http.Response {
	h := http.Header{}
	if limit > 0 {
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	}
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	return &http.Response{StatusCode: status, Header: h}
}

// The pacing rule's numbers, as docs/reliability.md states them.
func TestBudgetPace(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	reset := start.Add(40 * time.Minute)
	for _, tc := range []struct {
		name string
		// samples: remaining at seconds after start
		samples [][2]int
		at      time.Duration // when Pace is asked
		status  int
		retry   string
		want    time.Duration
	}{
		{name: "no answer yet", want: 10 * time.Second},
		{name: "plenty left", samples: [][2]int{{0, 4900}, {600, 4800}}, at: 600 * time.Second, want: 10 * time.Second},
		// 100 a minute for 10 minutes, 1,000 left, 30 minutes to the reset:
		// 3,000 projected against 1,000 - 500 reserve: 6 times longer.
		{name: "would run out", samples: [][2]int{{0, 2000}, {600, 1000}}, at: 600 * time.Second, want: 60 * time.Second},
		{name: "within the reserve", samples: [][2]int{{0, 600}, {600, 400}}, at: 600 * time.Second, want: 30*time.Minute + time.Second},
		{name: "spent", samples: [][2]int{{0, 0}}, at: time.Second, want: 40*time.Minute + time.Second - time.Second},
		{name: "a burst fades", samples: [][2]int{{0, 5000}, {10, 4000}}, at: 610 * time.Second, want: 10 * time.Second},
		{name: "a burst just now stretches, at most 5 minutes", samples: [][2]int{{0, 5000}, {10, 4000}}, at: 10 * time.Second, want: 5 * time.Minute},
		{name: "burst is no trend", samples: [][2]int{{0, 2000}, {5, 1000}}, at: 5 * time.Second, want: 10 * time.Second},
		{name: "secondary limit", samples: [][2]int{{0, 4000}}, status: 403, retry: "90", want: 90 * time.Second},
		{name: "429 without Retry-After", status: 429, want: time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := clock.NewFake(start)
			b := NewBudget(fake)
			for _, s := range tc.samples {
				fake.Set(start.Add(time.Duration(s[0]) * time.Second))
				b.Observe(answer(200, 5000, s[1], reset, ""))
			}
			if tc.status != 0 {
				b.Observe(answer(tc.status, 0, 0, time.Time{}, tc.retry))
			}
			fake.Set(start.Add(tc.at))
			// The projection's second of clock difference makes the
			// stretch a little larger; compare to the second.
			if got := b.Pace(10 * time.Second); got.Round(time.Second) != tc.want.Round(time.Second) {
				t.Errorf("Pace(10s) = %s, want %s", got, tc.want)
			}
		})
	}
}
