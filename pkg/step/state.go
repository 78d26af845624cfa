package step

import (
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/config"
)

// Output keys. Kargo keeps a step's output in the Promotion's state, where
// later steps read runID, and where this step finds its own earlier state.
const (
	outRunID          = "runID"
	outRunURL         = "runURL"
	outHTMLURL        = "htmlURL"
	outCorrelationKey = "correlationKey"
	outConclusion     = "conclusion"
	outRunAttempt     = "runAttempt"
	outFailedJobs     = "failedJobs"
	outAttribution    = "attribution"
	// outDispatch holds a dispatch's progress while it is Running.
	outDispatch = "dispatch"
	// outWait holds the wait step's progress while it is Running.
	outWait = "wait"
)

// waitState is the wait step's progress: when it first looked, whether it
// has seen the run, an outage in progress, and what it last reported.
type waitState struct {
	firstCheck  time.Time
	seen        bool
	outageSince time.Time
	failures    int64
	lastStatus  string
	// pending describes the environments a waiting run waits on.
	pending string
}

func (s *waitState) encode() map[string]any {
	m := map[string]any{"firstCheck": stamp(s.firstCheck), "seen": s.seen}
	if !s.outageSince.IsZero() {
		m["outageSince"] = stamp(s.outageSince)
		m["failures"] = s.failures
	}
	if s.lastStatus != "" {
		m["lastStatus"] = s.lastStatus
	}
	if s.pending != "" {
		m["pending"] = s.pending
	}
	return m
}

func decodeWaitState(v any) *waitState {
	s := &waitState{}
	m, ok := v.(map[string]any)
	if !ok {
		return s
	}
	s.firstCheck = unstamp(m["firstCheck"])
	s.seen, _ = m["seen"].(bool)
	s.outageSince = unstamp(m["outageSince"])
	s.failures, _ = config.WholeNumber(m["failures"])
	s.lastStatus, _ = m["lastStatus"].(string)
	s.pending, _ = m["pending"].(string)
	return s
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func unstamp(v any) time.Time {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
