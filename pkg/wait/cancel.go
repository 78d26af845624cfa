package wait

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
)

// CancelAnswer is what GitHub said to a cancel.
type CancelAnswer string

const (
	// CancelAccepted: 202, GitHub is cancelling the run.
	CancelAccepted CancelAnswer = "accepted"
	// CancelCompleted: 409, the run had completed; nothing to cancel.
	CancelCompleted CancelAnswer = "completed"
	// CancelNotSent: the request provably never reached GitHub.
	CancelNotSent CancelAnswer = "not-sent"
	// CancelRefused: GitHub refused it (403, 404, ...) and did not act.
	CancelRefused CancelAnswer = "refused"
	// CancelUnknown: the request may have reached GitHub, and its answer
	// was lost or was an error: whether it acted is not known.
	CancelUnknown CancelAnswer = "unknown"
)

// Cancel asks GitHub once to cancel run runID; it is never resent. The
// error, when set, says what failed; the answer says what that means.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-runs#cancel-a-workflow-run
func Cancel(ctx context.Context, client *ghclient.Client, runID int64) (CancelAnswer, error) {
	u := fmt.Sprintf("repos/%s/%s/actions/runs/%d/cancel", url.PathEscape(client.Repo.Owner), url.PathEscape(client.Repo.Name), runID)
	req, err := client.NewRequest(ctx, http.MethodPost, u, nil)
	if err != nil {
		return CancelNotSent, err
	}
	_, err = client.Do(req, nil)
	var accepted *github.AcceptedError
	switch {
	case err == nil, errors.As(err, &accepted):
		return CancelAccepted, nil
	case ghclient.StatusCode(err) == http.StatusConflict:
		return CancelCompleted, nil
	case ghclient.NotSent(err):
		return CancelNotSent, err
	}
	code := ghclient.StatusCode(err)
	err = ghclient.Classify(err, fmt.Sprintf("cancelling run %d of %s", runID, client.Repo.FullName()), ghclient.Hints{
		Forbidden: "the credentials need the actions:write permission to cancel",
	})
	if code >= 400 && code < 500 && code != http.StatusTooManyRequests {
		return CancelRefused, err
	}
	return CancelUnknown, err
}
