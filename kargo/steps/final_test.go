package steps

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kargoapi "github.com/akuity/kargo/api/v1alpha1"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// In Kargo, an API host that refuses connections past the client's short
// retry is final, as on the command line (docs/reliability.md, "What is
// final"): the promotion ends in its first reconcile instead of retrying
// to its error threshold, the dispatch step Failed with words saying
// nothing was dispatched and what to check, and no run claimed.
func TestKargoEngineRefusedConnectionFailsThePromotion(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{}, "testdata/stage.yaml", ghsim.Workflow{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	var dials atomic.Int32
	f.pool = &ghclient.Pool{Clock: clock.NewFake(time.Now()), DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, closed)
	}}
	res, running := f.promote(t, f.controller(), promoCtx(f, "uat.final"))
	first := res.StepExecutionMetadata[0]
	if res.Status != kargoapi.PromotionPhaseFailed || first.Status != kargoapi.PromotionStepStatusFailed {
		t.Fatalf("promotion %s, step %s: %s", res.Status, first.Status, first.Message)
	}
	for _, want := range []string{"connection refused", "check the repository URL's host and port", "nothing was dispatched"} {
		if !strings.Contains(first.Message, want) {
			t.Errorf("the step's message lacks %q: %s", want, first.Message)
		}
	}
	if strings.Contains(first.Message, "retrying is safe") || running > 1 || dials.Load() < 2 || dials.Load() > 4 {
		t.Errorf("%d Running reconciles, %d dials (want a short retry, then the end): %s", running, dials.Load(), first.Message)
	}
}
