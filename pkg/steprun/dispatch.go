package steprun

import (
	"context"
	"fmt"

	"github.com/kargo-gha/kargo-gha/pkg/config"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/repourl"
)

// Dispatch runs gha-dispatch-workflow. It is idempotent within a promotion:
// when the shared state already holds this step's runID (a retry, a
// controller restart that re-runs the steps), it returns that run and
// dispatches nothing.
func (r *Runner) Dispatch(ctx context.Context, sc *Context) (Result, error) {
	if prev := ownOutput(sc); prev != nil && prev["runID"] != nil {
		if id, err := config.ParseRunID(prev["runID"]); err == nil {
			return Result{
				Status:  StatusSucceeded,
				Message: fmt.Sprintf("run %d was dispatched earlier in this promotion; not dispatching again", id),
				Output:  map[string]any{"runID": id},
			}, nil
		}
	}
	cfg, err := config.ParseDispatch(sc.Config, repourl.Options{})
	if err != nil {
		return configError(err)
	}
	client, warning, err := r.client(ctx, sc, cfg.RepoURL, cfg.Legacy, cfg.InsecureSkipTLSVerify)
	if err != nil {
		return errored(err)
	}
	res, err := r.Dispatcher.Dispatch(ctx, client, dispatch.Request{
		WorkflowFile: cfg.WorkflowFile, Ref: cfg.Ref, Inputs: cfg.Inputs, Timeout: cfg.Timeout,
	})
	if err != nil {
		return errored(err)
	}
	msg := fmt.Sprintf("dispatched %s on %s: run %d %s", cfg.WorkflowFile, cfg.Ref, res.RunID, res.HTMLURL)
	if warning != "" {
		msg += "; " + warning
	}
	return Result{Status: StatusSucceeded, Message: msg, Output: map[string]any{"runID": res.RunID}}, nil
}
