package step

import (
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
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
	// outDispatch holds a dispatch's progress while it is Running.
	outDispatch = "dispatch"
	// outWait holds the wait step's progress while it is Running.
	outWait = "wait"
)

// dispatchState is a dispatch's progress as kept in Output: the attempt
// and how often sending it failed without an effect.
type dispatchState struct {
	attempt      *dispatch.Attempt
	sendFailures int64
}

func (s *dispatchState) encode() map[string]any {
	a := s.attempt
	m := map[string]any{
		"attempt":   a.ID,
		"intentAt":  stamp(a.IntentAt),
		"maybeSent": a.MaybeSent,
	}
	if a.Key != "" {
		m["key"] = a.Key
	}
	if !a.SentAt.IsZero() {
		m["sentAt"] = stamp(a.SentAt)
	}
	if !a.NotBefore.IsZero() {
		m["notBefore"] = stamp(a.NotBefore)
	}
	if s.sendFailures > 0 {
		m["sendFailures"] = s.sendFailures
	}
	return m
}

// decodeDispatchState reads the state back, as Kargo hands it: after a
// save and reload numbers are float64. nil when there is none.
func decodeDispatchState(v any) *dispatchState {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	id, _ := m["attempt"].(string)
	intent := unstamp(m["intentAt"])
	if id == "" || intent.IsZero() {
		return nil
	}
	a := &dispatch.Attempt{ID: id, IntentAt: intent, SentAt: unstamp(m["sentAt"]), NotBefore: unstamp(m["notBefore"])}
	a.Key, _ = m["key"].(string)
	a.MaybeSent, _ = m["maybeSent"].(bool)
	n, _ := int64Of(m["sendFailures"])
	return &dispatchState{attempt: a, sendFailures: n}
}

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
	s.failures, _ = int64Of(m["failures"])
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

// int64Of reads a number as Kargo hands it back: int64 within a call,
// float64 after the state went through JSON, int from expressions.
func int64Of(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), n == float64(int64(n))
	}
	return 0, false
}
