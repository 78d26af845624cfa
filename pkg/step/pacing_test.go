package step

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// Twenty waits and a busy neighbour on one token of 600 requests an hour:
// the budget's pacing stretches every promotion's RetryAfter alike, while
// requests are still answered, and nothing is ever refused for the rate
// limit in the hour.
func TestPromotionsOnOneTokenSlowDownTogetherBeforeTheLimit(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{QueuedFor: 2 * time.Hour, RunFor: time.Hour, RateLimit: 600}, ghsim.Workflow{})
	counts := &Counts{}
	e.r.Observe(counts)
	var proms []*waitPromotion
	next := map[*waitPromotion]time.Time{}
	for range 20 {
		p := e.promotion(e.run(map[string]any{"pollInterval": "10s"}))
		proms = append(proms, p)
		next[p] = e.clock.Now()
	}
	// The neighbour: counted reads on the same token, itself paced by the
	// same budget, as another step of this process would be.
	res, err := e.r.Wait(context.Background(), &Context{Config: proms[0].cfg, Credentials: kargoCreds})
	if err != nil || res.Status != StatusRunning {
		t.Fatalf("%+v, %v", res, err)
	}
	client, err := e.r.Clients.Client(mustRepo(t), *mustCreds(t), false)
	if err != nil {
		t.Fatal(err)
	}
	neighbourAt := e.clock.Now()
	start := e.clock.Now()
	var firstStretch time.Time
	stretchedLeft := -1
	for e.clock.Now().Sub(start) < time.Hour {
		now := e.clock.Now()
		if !now.Before(neighbourAt) {
			_, _, _ = client.Users.Get(context.Background(), "")
			neighbourAt = now.Add(client.Budget.Pace(time.Second))
		}
		var round []time.Duration
		for _, p := range proms {
			if now.Before(next[p]) {
				continue
			}
			res, err := p.call(context.Background())
			if err != nil || res.Status != StatusRunning || res.RetryAfter == nil {
				t.Fatalf("at %s: %+v, %v", now.Sub(start), res, err)
			}
			if strings.Contains(res.Message, "rate limit") {
				t.Fatalf("at %s a wait was held back by GitHub's rate limit: %s", now.Sub(start), res.Message)
			}
			round = append(round, *res.RetryAfter)
			next[p] = now.Add(*res.RetryAfter)
			if *res.RetryAfter > 10*time.Second && firstStretch.IsZero() {
				firstStretch = now
				stretchedLeft, _ = client.Budget.Remaining()
			}
		}
		for _, d := range round[min(1, len(round)):] {
			if d.Round(time.Second) != round[0].Round(time.Second) {
				t.Fatalf("at %s promotions were paced apart: %v", now.Sub(start), round)
			}
		}
		e.clock.Advance(time.Second)
	}
	if firstStretch.IsZero() || stretchedLeft <= 0 {
		t.Fatalf("no pause was stretched before the budget ran out (first stretch at %v with %d left)", firstStretch, stretchedLeft)
	}
	for _, l := range counts.Lines() {
		if strings.Contains(l, " 403:") || strings.Contains(l, " 429:") {
			t.Fatalf("GitHub refused requests: %s\n%s", l, strings.Join(counts.Lines(), "\n"))
		}
	}
	t.Logf("first stretch %s in, %d left; %s", firstStretch.Sub(start), stretchedLeft, strings.Join(counts.Lines(), "; "))
}

func mustRepo(t *testing.T) repourl.Repository {
	t.Helper()
	r, err := repourl.Parse("https://github.com/example/test", repourl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustCreds(t *testing.T) *credentials.Credentials {
	t.Helper()
	c, _ := kargoCreds(context.Background(), "https://github.com/example/test")
	return c
}

// A secondary limit GitHub answers to one promotion holds back every
// promotion on the token until its Retry-After, not only the one refused.
func TestSecondaryLimitHoldsEveryPromotionOnTheToken(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{QueuedFor: time.Hour, RunFor: time.Hour}, ghsim.Workflow{})
	var proms []*waitPromotion
	for range 5 {
		p := e.promotion(e.run(map[string]any{"pollInterval": "10s"}))
		if res, err := p.call(context.Background()); err != nil || res.Status != StatusRunning {
			t.Fatalf("%+v, %v", res, err)
		}
		proms = append(proms, p)
	}
	e.clock.Advance(10 * time.Second)
	e.sim.InjectFault(&ghsim.Fault{SecondaryRateLimit: 90 * time.Second, Times: 1})
	for i, p := range proms {
		res, err := p.call(context.Background())
		if err != nil || res.Status != StatusRunning || res.RetryAfter == nil || *res.RetryAfter < 89*time.Second {
			t.Fatalf("promotion %d after a secondary limit: %+v, %v (want Running, RetryAfter of about 90 s)", i, res, err)
		}
	}
	e.clock.Advance(90 * time.Second)
	if res, _ := proms[0].call(context.Background()); res.RetryAfter == nil || *res.RetryAfter != 10*time.Second {
		t.Fatalf("after the Retry-After: %+v, want the planned 10 s again", res)
	}
}
