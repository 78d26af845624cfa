package steprun

import (
	"context"
	"fmt"

	"github.com/kargo-gha/kargo-gha/pkg/config"
	"github.com/kargo-gha/kargo-gha/pkg/repourl"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// Wait runs gha-wait-for-workflow: one check of the run. While it runs, the
// step is Running and asks to be checked again after pollInterval (without
// one, Kargo's default reconcile interval applies). A completed run ends
// the step: Succeeded with output conclusion, or Failed, finally, when the
// conclusion is not the expected one.
func (r *Runner) Wait(ctx context.Context, sc *Context) (Result, error) {
	cfg, err := config.ParseWait(sc.Config, repourl.Options{})
	if err != nil {
		return configError(err)
	}
	client, warning, err := r.client(ctx, sc, cfg.RepoURL, cfg.Legacy, cfg.InsecureSkipTLSVerify)
	if err != nil {
		return errored(err)
	}
	st, err := r.Checker.Check(ctx, client, cfg.RunID, cfg.ExpectedConclusion)
	if err != nil {
		return errored(err)
	}
	suffix := ""
	if warning != "" {
		suffix = "; " + warning
	}
	switch st.Outcome {
	case wait.Running:
		res := Result{Status: StatusRunning, Message: fmt.Sprintf("run %d is %s: %s%s", st.RunID, st.Status, st.HTMLURL, suffix)}
		if cfg.PollInterval > 0 {
			d := cfg.PollInterval
			res.RetryAfter = &d
		}
		return res, nil
	case wait.Mismatched:
		r.Checker.Forget(client, cfg.RunID)
		err := st.Err()
		return Result{Status: StatusFailed, Message: err.Error() + suffix, Output: map[string]any{"conclusion": st.Conclusion}}, err
	}
	r.Checker.Forget(client, cfg.RunID)
	return Result{
		Status:  StatusSucceeded,
		Message: fmt.Sprintf("run %d completed with conclusion %s: %s%s", st.RunID, st.Conclusion, st.HTMLURL, suffix),
		Output:  map[string]any{"conclusion": st.Conclusion},
	}, nil
}
