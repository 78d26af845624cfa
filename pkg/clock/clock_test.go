package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFakeSleepAdvancesWithoutWaiting(t *testing.T) {
	start := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	f := NewFake(start)
	wall := time.Now()
	for range 1000 {
		if err := f.Sleep(context.Background(), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.Now().Sub(start); got != 1000*time.Minute {
		t.Fatalf("advanced %s, want 1000m", got)
	}
	if time.Since(wall) > time.Second {
		t.Fatalf("a fake sleep waited on the wall clock")
	}
}

func TestSleepReturnsTheCauseOfAnEndedContext(t *testing.T) {
	cause := errors.New("stop")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	for _, c := range []Clock{System{}, NewFake(time.Unix(0, 0))} {
		if err := c.Sleep(ctx, time.Hour); !errors.Is(err, cause) {
			t.Fatalf("%T: err = %v, want the cause", c, err)
		}
	}
	if Or(nil) != (System{}) {
		t.Fatal("Or(nil) is not the system clock")
	}
}
