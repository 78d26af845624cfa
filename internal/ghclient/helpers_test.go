package ghclient

import "github.com/google/go-github/v90/github"

func githubDispatch() github.CreateWorkflowDispatchEventRequest {
	return github.CreateWorkflowDispatchEventRequest{Ref: "main"}
}
