package step

import (
	"time"
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
	// outLinks, outHeadSHA, outHeadBranch: links.go, commit.go.
	outLinks      = "links"
	outHeadSHA    = "headSHA"
	outHeadBranch = "headBranch"
	// outCancel holds a mismatched run's cancel (commit.go).
	outCancel = "cancel"
	// outOutputs holds the run's outputs artifact's keys; outFailure the
	// failed step's log excerpt (runoutputs.go).
	outOutputs = "outputs"
	outFailure = "failure"
	// outDispatch holds a dispatch's progress while it is Running.
	outDispatch = "dispatch"
	// outWait holds the wait step's progress while it is Running.
	outWait = "wait"
)

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func unstamp(v any) time.Time {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
