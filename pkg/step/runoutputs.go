package step

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// What a finished run leaves beyond its conclusion: the outputs its
// workflow uploaded (outputsArtifact) after a success, and the failed
// step's last log lines after a failure.

// runOutputs reads the run's outputs artifact when the step names one and
// the run succeeded; a run that ended otherwise has no outputs to give
// (its failure is reported instead).
func (w *waitCall) runOutputs(ctx context.Context, st *wait.Status) (map[string]any, error) {
	if w.cfg.OutputsArtifact == "" || st.Conclusion != "success" {
		return nil, nil
	}
	return w.r.Checker.Outputs(ctx, w.t.client, st.RunID, w.cfg.OutputsArtifact)
}

func withOutputs(out, outputs map[string]any) map[string]any {
	if outputs != nil {
		out[outOutputs] = outputs
	}
	return out
}

// outputsFailed decides what a run that succeeded but whose outputs could
// not be read means. An artifact that is missing, expired, too large or not
// the documented JSON ends the step (Errored, final: the promotion would
// go on without what it asked for); GitHub or the blob store failing keeps
// it Running, backed off, for up to the outage budget.
func (w *waitCall) outputsFailed(ctx context.Context, err error, st *wait.Status) (Result, error) {
	if callStopped(ctx, err) {
		return stoppedCall(ctx, err, w.cfg.RunID, w.output()), nil
	}
	if failure.IsFinal(err) {
		return errored(failure.Final(fmt.Errorf("run %d completed with conclusion %s (%s), but its outputs (outputsArtifact %q) cannot be read: %w",
			st.RunID, st.Conclusion, st.HTMLURL, w.cfg.OutputsArtifact, err)), w.finalOutput(st))
	}
	lasted, budget, pause := w.failedAgain(&w.st.outputsSince, &w.st.outputsTries, err)
	if lasted > budget {
		return errored(failure.Final(fmt.Errorf("run %d completed with conclusion %s (%s), but reading its outputs failed for %s (%d tries; outage budget %s): %w",
			st.RunID, st.Conclusion, st.HTMLURL, lasted.Round(time.Second), w.st.outputsTries, budget, err)), w.finalOutput(st))
	}
	msg := fmt.Sprintf("run %d completed with conclusion %s; reading its outputs failed (%s); trying again in %s", st.RunID, st.Conclusion, ghclient.Describe(err), pause.Round(time.Second))
	w.sc.log(slog.LevelInfo, msg, "runID", st.RunID)
	return running(msg, w.output(), pause), nil
}

// excerpts adds the failed steps' last log lines to st, logging what could
// not be read: an excerpt is a help, never a reason to fail otherwise.
func (w *waitCall) excerpts(ctx context.Context, st *wait.Status) {
	for _, err := range w.r.Checker.Excerpts(ctx, w.t.client, st) {
		w.sc.log(slog.LevelWarn, fmt.Sprintf("run %d: %v", st.RunID, err), "runID", st.RunID)
	}
}

// failureOutput is the first failed job that has a log excerpt, as
// {job, step, stepNumber, url, excerpt}: excerpt is a list of lines, the
// workflow's own output (cleaned), so a later step or a person can show
// why the run failed. nil when no job has one.
func failureOutput(st *wait.Status) map[string]any {
	for _, j := range st.FailedJobs {
		if len(j.Excerpt) == 0 {
			continue
		}
		lines := make([]any, len(j.Excerpt))
		for i, l := range j.Excerpt {
			lines[i] = l
		}
		return map[string]any{"job": j.Name, "step": j.Step, "stepNumber": j.StepNumber, "url": j.URL, "excerpt": lines}
	}
	return nil
}
