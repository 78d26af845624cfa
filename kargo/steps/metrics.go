package steps

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kargo-gha/kargo-gha/pkg/step"
)

// Metrics are the steps' Prometheus metrics: what they ask of GitHub and
// what it answers, the rate limit left, how runs were found, refusals to
// guess, and how long the engine's step calls take. Label values are
// bounded: hosts, a fixed set of endpoints and reasons, never a repository
// or a run.
type Metrics struct {
	requests    *prometheus.CounterVec
	notModified *prometheus.CounterVec
	remaining   *prometheus.GaugeVec
	dispatches  *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	calls       *prometheus.HistogramVec
}

// metricsNamespace prefixes every metric name.
const metricsNamespace = "kargo_gha"

// NewMetrics returns the steps' metrics, registered in reg (in a Kargo
// controller, controller-runtime's metrics.Registry, which its metrics
// endpoint serves).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "github_requests_total",
			Help: "Answers from GitHub by API host, endpoint and HTTP status (304s included; each try of a retried request counts)."}, []string{"host", "endpoint", "code"}),
		notModified: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "github_not_modified_total",
			Help: "304 answers to conditional reads, which cost no primary rate limit, by API host and endpoint."}, []string{"host", "endpoint"}),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: "github_rate_limit_remaining",
			Help: "X-RateLimit-Remaining of the last answer that carried it, by API host."}, []string{"host"}),
		dispatches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "dispatches_total",
			Help: "Dispatches whose run became known, by how it was found (run-details, correlation-key, run-listing, earlier-dispatch)."}, []string{"attribution"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "attribution_refusals_total",
			Help: "Dispatches whose run was refused rather than guessed, by reason (several, key-reused, uncertain, late, clock)."}, []string{"reason"}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metricsNamespace, Name: "step_call_duration_seconds",
			Help:    "Duration of one engine call of a gha-* step, by step and result status.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 30}}, []string{"step", "status"}),
	}
	reg.MustRegister(m.requests, m.notModified, m.remaining, m.dispatches, m.refusals, m.calls)
	return m
}

// Answered implements step.Observer.
func (m *Metrics) Answered(a step.Answer) {
	m.requests.WithLabelValues(a.Host, a.Endpoint, strconv.Itoa(a.Status)).Inc()
	if a.Status == 304 {
		m.notModified.WithLabelValues(a.Host, a.Endpoint).Inc()
	}
	if a.RateRemaining >= 0 {
		m.remaining.WithLabelValues(a.Host).Set(float64(a.RateRemaining))
	}
}

// Dispatched implements step.Observer.
func (m *Metrics) Dispatched(method string) { m.dispatches.WithLabelValues(method).Inc() }

// Refused implements step.Observer.
func (m *Metrics) Refused(reason string) { m.refusals.WithLabelValues(reason).Inc() }

// Called implements step.Observer.
func (m *Metrics) Called(kind string, status step.Status, d time.Duration) {
	m.calls.WithLabelValues(kind, string(status)).Observe(d.Seconds())
}
