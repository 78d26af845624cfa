package workflowfile

import (
	"context"
	"fmt"
	"net/url"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
)

// Report is a dry run of one dispatch: every problem found, what could not
// be checked, and what the credentials may do. Nothing was dispatched.
type Report struct {
	Repository string    `json:"repository"`
	Workflow   string    `json:"workflow"`
	Path       string    `json:"path,omitempty"`
	Ref        string    `json:"ref"`
	Problems   []Problem `json:"problems"`
	// NotChecked are fields whose values are expressions only the
	// promotion evaluates (and, when the file could not be read, the
	// checks that needed it).
	NotChecked []string `json:"notChecked,omitempty"`
	Access     *Access  `json:"access,omitempty"`
	// Transient: GitHub could not be asked (a 5xx, a rate limit, a
	// timeout), so a problem may be GitHub's, not the step's: retry.
	Transient bool `json:"transient,omitempty"`
}

// OK reports a dry run without problems.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Access is what GitHub told of the credentials, cheaply: a user token's
// permissions on the repository (GET /repos/{owner}/{repo}), an App
// installation's from its token exchange answer.
type Access struct {
	CanRead bool `json:"canRead"`
	// CanDispatch is null when GitHub's answer does not say.
	CanDispatch *bool  `json:"canDispatch"`
	Source      string `json:"source"`
}

// DryRun reads the workflow file at ref and checks d against it, and
// checks the credentials: two or three GETs (the file conditional), no
// dispatch. A file that cannot be read is itself a problem.
func DryRun(ctx context.Context, c *ghclient.Client, k *Cache, workflow, ref string, d Dispatch) *Report {
	r := &Report{Repository: c.Repo.WebURL(), Workflow: workflow, Ref: ref, Problems: []Problem{}}
	acc, err := access(ctx, c)
	if err != nil {
		r.Problems = append(r.Problems, Problem{"credentials", err.Error()})
		r.Transient = !failure.IsFinal(err)
	} else {
		r.Access = acc
		r.Problems = append(r.Problems, acc.problems()...)
	}
	f, path, err := k.Read(ctx, c, workflow, ref)
	r.Path = path
	if err != nil {
		r.Problems = append(r.Problems, Problem{"workflowFile", err.Error()})
		r.Transient = r.Transient || !failure.IsFinal(err)
		r.NotChecked = append(r.NotChecked, "inputs", "correlationInput")
		return r
	}
	problems, notChecked := Check(f, d)
	r.Problems = append(r.Problems, problems...)
	r.NotChecked = append(r.NotChecked, notChecked...)
	return r
}

func (a *Access) problems() []Problem {
	var ps []Problem
	switch {
	case !a.CanRead:
		ps = append(ps, Problem{"credentials", fmt.Sprintf("the credentials cannot read the repository's runs (%s): the run would never be found; grant actions:read", a.Source)})
	case a.CanDispatch != nil && !*a.CanDispatch:
		ps = append(ps, Problem{"credentials", fmt.Sprintf("the credentials cannot dispatch (%s): grant actions:write (fine-grained token or GitHub App) or use a classic token with the repo scope and write access", a.Source)})
	}
	return ps
}

// access asks what the credentials may do. For an App installation the
// token exchange's answer says it (actions: read or write); for a user
// token, the repository's permissions say what the user may do (push is
// write), which bounds what any token of theirs can.
func access(ctx context.Context, c *ghclient.Client) (*Access, error) {
	if c.IsApp() {
		perms, known, err := c.InstallationPermissions(ctx)
		if err != nil {
			return nil, fmt.Errorf("the GitHub App installation token: %w", err)
		}
		if !known {
			return nil, fmt.Errorf("the token exchange named no permissions")
		}
		a := perms["actions"]
		return &Access{CanRead: a == "read" || a == "write", CanDispatch: ptr(a == "write"), Source: fmt.Sprintf("GitHub App installation, actions: %s", orNone(a))}, nil
	}
	repo, _, err := c.Repositories.Get(ctx, url.PathEscape(c.Repo.Owner), url.PathEscape(c.Repo.Name))
	if err != nil {
		return nil, ghclient.Classify(err, "reading "+c.Repo.FullName(), ghclient.Hints{
			NotFound: fmt.Sprintf("%s does not exist or the credentials cannot see it (a token without access gets 404)", c.Repo.WebURL()),
		})
	}
	p := repo.GetPermissions()
	if p == nil {
		return &Access{CanRead: true, Source: "token; GitHub named no permissions, so whether it may dispatch is not known"}, nil
	}
	write := p.GetPush() || p.GetMaintain() || p.GetAdmin()
	// A fine-grained token can have less than its user: GitHub shows the
	// user's role here, so a yes is an upper bound and a no is certain.
	return &Access{CanRead: true, CanDispatch: ptr(write), Source: fmt.Sprintf("token of a user with %s access", map[bool]string{true: "write", false: "read"}[write])}, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func ptr[T any](v T) *T { return &v }
