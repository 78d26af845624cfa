package steps

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	kargoapi "github.com/akuity/kargo/api/v1alpha1"
	"github.com/akuity/kargo/pkg/promotion"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/step"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// scrape reads a metrics endpoint as Prometheus would, over HTTP.
func scrape(t *testing.T, reg prometheus.Gatherer) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// value is the sample of name with exactly the labels given, or -1.
func value(text, name string, labels ...string) float64 {
	want := name
	if len(labels) > 0 {
		want += "{" + strings.Join(labels, ",") + "}"
	}
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, want+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// A promotion through Kargo's engine (dispatch, then wait) leaves its
// traces on the metrics endpoint: the requests by endpoint and answer, the
// rate limit left, the dispatch by how its run was found, the step calls.
func TestKargoEngineMetricsAfterAPromotion(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{QueuedFor: 300 * time.Millisecond, RunFor: 300 * time.Millisecond, RateLimit: 1000}, "testdata/stage.yaml", ghsim.Workflow{})
	reg := prometheus.NewRegistry()
	registry := promotion.MustNewStepRunnerRegistry()
	r := &step.Runner{Clients: f.pool, Dispatcher: &dispatch.Dispatcher{Settle: time.Second}, Checker: &wait.Checker{}}
	r.Observe(NewMetrics(reg))
	Register(registry, r)
	kargoClient := fake.NewClientBuilder().Build()
	c := promotion.NewLocalOrchestrator(registry, kargoClient, kargoClient, f.credsDB, nil, promotion.DefaultExprDataCacheFn)
	res, _ := f.promote(t, c, promoCtx(f, "uat.metrics"))
	if res.Status != kargoapi.PromotionPhaseSucceeded {
		t.Fatalf("promotion %s: %s", res.Status, res.Message)
	}
	text := scrape(t, reg)
	sim := f.sim.Stats()
	host := `host="api.github.com"`
	if got := value(text, "kargo_gha_github_requests_total", `code="200"`, `endpoint="dispatch"`, host); got != 1 {
		t.Errorf("dispatch requests answered 200: %v, want 1\n%s", got, text)
	}
	total := 0.0
	for _, m := range regexp.MustCompile(`(?m)^kargo_gha_github_requests_total\{[^}]*\} (\d+)$`).FindAllStringSubmatch(text, -1) {
		n, _ := strconv.ParseFloat(m[1], 64)
		total += n
	}
	if int(total) != sim.Requests {
		t.Errorf("requests counted %v, the simulator answered %d", total, sim.Requests)
	}
	if got := value(text, "kargo_gha_github_not_modified_total", `endpoint="get-run"`, host); int(got) != sim.NotModified && !(got == -1 && sim.NotModified == 0) {
		t.Errorf("304s %v, the simulator answered %d", got, sim.NotModified)
	}
	if got := value(text, "kargo_gha_github_rate_limit_remaining", host); got < 1000-float64(sim.Counted)-1 || got >= 1000 {
		t.Errorf("rate limit remaining %v after %d counted requests of 1000", got, sim.Counted)
	}
	if got := value(text, "kargo_gha_dispatches_total", `attribution="run-details"`); got != 1 {
		t.Errorf("dispatches by run details: %v, want 1", got)
	}
	if got := value(text, "kargo_gha_step_call_duration_seconds_count", `status="Succeeded"`, `step="wait"`); got != 1 {
		t.Errorf("wait calls that succeeded: %v, want 1", got)
	}
	if got := value(text, "kargo_gha_step_call_duration_seconds_count", `status="Running"`, `step="wait"`); got < 1 {
		t.Errorf("wait calls Running: %v, want some", got)
	}
}

// Compiled into a controller (this package's init), the steps' metrics are
// in controller-runtime's registry, which the controller's metrics endpoint
// serves: registering them there again is refused as a duplicate.
func TestMetricsAreInControllerRuntimesRegistry(t *testing.T) {
	again := NewMetrics(prometheus.NewRegistry())
	for _, c := range []prometheus.Collector{again.requests, again.notModified, again.remaining, again.dispatches, again.refusals, again.calls} {
		var are prometheus.AlreadyRegisteredError
		if err := metrics.Registry.Register(c); !errors.As(err, &are) {
			t.Errorf("registering again in controller-runtime's registry: %v, want AlreadyRegisteredError", err)
		}
	}
}
