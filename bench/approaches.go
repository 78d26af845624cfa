package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
)

// approach is one way of dispatching a workflow and learning its run ID.
type approach interface {
	name() string
	dispatch(ctx context.Context, c *ghclient.Client, workflow, nonce string) (int64, error)
}

// ours is this project: run details when GitHub gives them, else run
// correlation by listing (pkg/dispatch). With correlationInput set, each
// dispatch carries a fresh key in that input, which the workflow's
// run-name echoes (the README's advice for concurrent dispatches without
// run details).
type ours struct {
	d                *dispatch.Dispatcher
	correlationInput string
}

// dispatchTimeout is Request.Timeout in every scenario (on the run's clock).
const dispatchTimeout = 120 * time.Second

func (o ours) name() string {
	if o.correlationInput != "" {
		return "kargo-gha, correlationInput"
	}
	return "kargo-gha"
}

func (o ours) dispatch(ctx context.Context, c *ghclient.Client, workflow, nonce string) (int64, error) {
	req := dispatch.Request{WorkflowFile: workflow, Ref: "main", Inputs: map[string]string{"nonce": nonce}, CorrelationInput: o.correlationInput, Timeout: dispatchTimeout}
	res, err := o.d.Dispatch(ctx, c, req, "")
	if err != nil {
		return 0, err
	}
	return res.ID, nil
}

// fixedPoll stands for the popular dispatch actions before run details
// existed: dispatch, then every pollEvery list the workflow's runs and take
// the newest workflow_dispatch run created after the local dispatch time.
type fixedPoll struct {
	pollEvery time.Duration
	clk       clock.Clock
}

func (fixedPoll) name() string { return "baseline: fixed 5 s poll, newest run" }

func (p fixedPoll) dispatch(ctx context.Context, c *ghclient.Client, workflow, nonce string) (int64, error) {
	start := p.clk.Now().Truncate(time.Second)
	_, _, err := c.Actions.CreateWorkflowDispatchEventByFileName(ctx, c.Repo.Owner, c.Repo.Name, workflow, github.CreateWorkflowDispatchEventRequest{
		Ref: "main", Inputs: map[string]any{"nonce": nonce},
	})
	if err != nil {
		return 0, err
	}
	for {
		if err := p.clk.Sleep(ctx, p.pollEvery); err != nil {
			return 0, err
		}
		runs, _, err := c.Actions.ListWorkflowRunsByFileName(ctx, c.Repo.Owner, c.Repo.Name, workflow, &github.ListWorkflowRunsOptions{
			Event: "workflow_dispatch", Branch: "main", ListOptions: github.ListOptions{PerPage: 10},
		})
		if err != nil {
			continue
		}
		for _, r := range runs.WorkflowRuns {
			if !r.GetCreatedAt().Time.Before(start) {
				return r.GetID(), nil // newest first: the newest after the dispatch
			}
		}
	}
}

// detailsOnly asks GitHub for the run details and has no fallback.
type detailsOnly struct{}

func (detailsOnly) name() string { return "baseline: run details only" }

func (detailsOnly) dispatch(ctx context.Context, c *ghclient.Client, workflow, nonce string) (int64, error) {
	details, _, err := c.Actions.CreateWorkflowDispatchEventByFileName(ctx, c.Repo.Owner, c.Repo.Name, workflow, github.CreateWorkflowDispatchEventRequest{
		Ref: "main", Inputs: map[string]any{"nonce": nonce}, ReturnRunDetails: github.Ptr(true),
	})
	if err != nil {
		return 0, err
	}
	if details.GetWorkflowRunID() == 0 {
		return 0, errors.New("GitHub answered 204 without run details")
	}
	return details.GetWorkflowRunID(), nil
}

// plainGet reads a run without conditional requests (baseline waiting).
func plainGet(ctx context.Context, c *ghclient.Client, runID int64) (string, error) {
	u := fmt.Sprintf("repos/%s/%s/actions/runs/%d", url.PathEscape(c.Repo.Owner), url.PathEscape(c.Repo.Name), runID)
	req, err := c.NewRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	var run github.WorkflowRun
	if _, err := c.Do(req, &run); err != nil {
		return "", err
	}
	return run.GetStatus(), nil
}

// unkeyed is this project without a correlation key, named for the
// concurrency table: its dispatches of one workflow and ref are sent one at
// a time.
type unkeyed struct{ ours }

func (unkeyed) name() string { return "kargo-gha, no key (sent one at a time)" }
