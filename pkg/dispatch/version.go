package dispatch

import (
	"context"
	"fmt"
	"net/url"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
)

// DispatchAPI is how a dispatch is sent to a host: the REST API version and
// whether the answer can name the run. A host is tried newest first and
// falls back one step only on an answer that says the version or the field
// is unknown, which is a 400 GitHub did not act on.
type DispatchAPI string

const (
	// API2026: X-GitHub-Api-Version 2026-03-10, which answers 200 with the
	// run's details always (github.com, GHES 3.21 and later).
	API2026 DispatchAPI = "2026-03-10"
	// API2022RunDetails: 2022-11-28 with return_run_details: true.
	API2022RunDetails DispatchAPI = "2022-11-28+return_run_details"
	// API2022: 2022-11-28 without the field (GHES 3.20 and older); the run
	// is found by its key or by listing.
	API2022 DispatchAPI = "2022-11-28"
)

func (a DispatchAPI) valid() bool {
	switch a {
	case "", API2026, API2022RunDetails, API2022:
		return true
	}
	return false
}

func (a DispatchAPI) version() string {
	if a == API2026 || a == "" {
		return ghclient.APIVersion2026
	}
	return ghclient.APIVersion2022
}

func (a DispatchAPI) runDetailsField() bool { return a == API2022RunDetails }

// fallback is the next way to try after err refused api, if err says that
// the version or the field is unknown and that way was not tried yet. A
// 5xx, a lost answer or any other refusal is no reason: the first may have
// been acted on, the others would be refused again.
func fallback(api DispatchAPI, err error, tried map[DispatchAPI]bool) (DispatchAPI, bool) {
	next := api
	switch {
	case (api == API2026 || api == "") && ghclient.UnsupportedVersion(err):
		next = API2022RunDetails
	case api == API2022RunDetails && ghclient.UnsupportedVersion(err):
		// An Enterprise Server that started on 2022-11-28 (see dispatchAPI)
		// and no longer serves it.
		next = API2026
	case api == API2022RunDetails && refusesRunDetails(err):
		next = API2022
	}
	if next == api || tried[next] {
		return api, false
	}
	return next, true
}

// dispatchAPI is where a dispatch starts: what the host taught this
// process, else what the saved state learned (a step resumed by another
// process), else what the client's reads learned (a host that refused
// 2026-03-10 for reads refuses it for the dispatch), else the newest on
// github.com and GHE.com, and 2022-11-28 with return_run_details on an
// Enterprise Server. An Enterprise Server at 3.21 or later answers that
// with the run's details too, and one at 3.20 costs one refused try (as
// before 2026-03-10) instead of two: a command-line process, which
// remembers nothing between invocations, pays this on every dispatch.
func dispatchAPI(host *hostState, c *ghclient.Client, s *State) DispatchAPI {
	if a := host.getAPI(); a != "" {
		return a
	}
	if s.DispatchAPI != "" {
		return s.DispatchAPI
	}
	serves, known := c.Serves2026()
	switch {
	case known && serves:
		return API2026
	case known || c.Repo.Enterprise:
		return API2022RunDetails
	}
	return API2026
}

// postAs sends the dispatch the way api says and decodes a 200's details.
func postAs(ctx context.Context, c *ghclient.Client, req Request, s *State, api DispatchAPI) (*github.WorkflowDispatchRunDetails, *github.Response, error) {
	body := github.CreateWorkflowDispatchEventRequest{Ref: req.Ref, Inputs: req.body(s)}
	if api.runDetailsField() {
		body.ReturnRunDetails = github.Ptr(true)
	}
	u := fmt.Sprintf("repos/%s/%s/actions/workflows/%s/dispatches",
		url.PathEscape(c.Repo.Owner), url.PathEscape(c.Repo.Name), url.PathEscape(req.WorkflowFile))
	r, err := c.NewRequest(ctx, "POST", u, body, github.WithVersion(api.version()))
	if err != nil {
		return nil, nil, err
	}
	details := new(github.WorkflowDispatchRunDetails)
	resp, err := c.Do(r, details)
	if err != nil {
		return nil, resp, err
	}
	return details, resp, nil
}
