package step

import (
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/config"
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
	// runsPage is where a person looks for the run while it is not known.
	runsPage string
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
	if s.runsPage != "" {
		m["runsPage"] = s.runsPage
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
	n, _ := config.WholeNumber(m["sendFailures"])
	page, _ := m["runsPage"].(string)
	return &dispatchState{attempt: a, sendFailures: n, runsPage: page}
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
