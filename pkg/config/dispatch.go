package config

import (
	"encoding/json"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/config/schemas"
	"github.com/kargo-gha/kargo-gha/pkg/repourl"
)

const (
	// DispatchStepName is the step's name in a Kargo promotion template.
	DispatchStepName = "gha-dispatch-workflow"
	// DefaultRunTimeout is how long to wait for the dispatched run to appear
	// when the configuration does not say (the reference's default).
	DefaultRunTimeout = 60 * time.Second
	// MaxRunTimeout is the reference's upper bound for timeout.
	MaxRunTimeout = 300 * time.Second
)

var dispatchSchema = compileSchema("gha-dispatch-workflow-config.json", schemas.DispatchWorkflow)

var dispatchHints = fieldHints{
	"ref":                  "a ref that looks like a number, such as 1.10, must be quoted; in an expression wrap it in quote()",
	"workflowFile#pattern": "must be a file name in .github/workflows ending in .yml or .yaml, without directories",
	"inputs":               "workflow_dispatch inputs are strings, numbers or booleans",
	"correlationInput":     "the name of a workflow_dispatch input declared by the workflow, such as dispatch_key",
}

// Legacy holds the fields of the deprecated v1.8 format.
type Legacy struct {
	Owner string
	Repo  string
	// SecretName names the Secret in the project namespace holding
	// accessToken and, for GitHub Enterprise Server, baseURL and uploadURL.
	SecretName string
}

// Dispatch is a validated gha-dispatch-workflow configuration.
type Dispatch struct {
	// RepoURL is empty for a v1.8 configuration until its credentials Secret
	// says which host serves it (see Legacy).
	RepoURL string
	// Repo is RepoURL parsed; zero for a v1.8 configuration.
	Repo         repourl.Repository
	WorkflowFile string
	Ref          string
	// Inputs are rendered to the exact strings sent to GitHub.
	Inputs                map[string]string
	Timeout               time.Duration
	InsecureSkipTLSVerify bool
	// CorrelationInput names the workflow input that carries the dispatch's
	// correlation key, or is empty.
	CorrelationInput string
	// Legacy is set when the configuration uses the v1.8 format.
	Legacy *Legacy
}

// ParseDispatch validates cfg, the step's config block after Kargo has
// evaluated its expressions, and converts it. Every problem is reported at
// once in a *Error; nothing is sent to GitHub for an invalid configuration.
func ParseDispatch(cfg map[string]any, opts repourl.Options) (*Dispatch, error) {
	var ps problems
	validateSchema(dispatchSchema, cfg, dispatchHints, &ps)
	d := &Dispatch{Timeout: DefaultRunTimeout}
	d.WorkflowFile, _ = cfg["workflowFile"].(string)
	if containsDotDot(d.WorkflowFile) {
		ps.add("workflowFile", "%q must not contain '..'", d.WorkflowFile)
	}
	if ref, ok := cfg["ref"].(string); ok {
		d.Ref = ref
		if err := checkRef(ref); err != nil && ref != "" {
			ps.add("ref", "%v", err)
		}
	}
	if inputs, ok := cfg["inputs"].(map[string]any); ok {
		d.Inputs = renderInputs(inputs, &ps)
	}
	if t, ok := WholeNumber(cfg["timeout"]); ok && t >= 1 && t <= int64(MaxRunTimeout/time.Second) {
		d.Timeout = time.Duration(t) * time.Second
	}
	d.InsecureSkipTLSVerify, _ = cfg["insecureSkipTLSVerify"].(bool)
	d.CorrelationInput, _ = cfg["correlationInput"].(string)
	if _, clash := d.Inputs[d.CorrelationInput]; clash && d.CorrelationInput != "" {
		ps.add("inputs."+d.CorrelationInput, "is set by correlationInput, which puts the correlation key there; remove it from inputs")
	}
	d.RepoURL, d.Repo, d.Legacy = parseRepoFields(cfg, opts, &ps)
	if err := ps.err(DispatchStepName); err != nil {
		return nil, err
	}
	return d, nil
}

// parseRepoFields picks the format: repoURL (current) or owner, repo and
// credentials (v1.8). Mixing them is an error because it is ambiguous which
// repository and credentials the user means.
func parseRepoFields(cfg map[string]any, opts repourl.Options, ps *problems) (string, repourl.Repository, *Legacy) {
	_, hasURL := cfg["repoURL"]
	var legacyFields []string
	for _, f := range []string{"owner", "repo", "credentials"} {
		if _, ok := cfg[f]; ok {
			legacyFields = append(legacyFields, f)
		}
	}
	switch {
	case hasURL && len(legacyFields) > 0:
		for _, f := range legacyFields {
			ps.add(f, "cannot be combined with repoURL: %s belongs to the deprecated v1.8 format; remove it and keep repoURL", f)
		}
		return "", repourl.Repository{}, nil
	case hasURL:
		raw, _ := cfg["repoURL"].(string)
		var repo repourl.Repository
		if raw != "" {
			var err error
			if repo, err = repourl.Parse(raw, opts); err != nil {
				ps.add("repoURL", "%v", err)
			}
		}
		return raw, repo, nil
	case len(legacyFields) == 0:
		ps.add("repoURL", "is required")
		return "", repourl.Repository{}, nil
	}
	l := &Legacy{}
	l.Owner, _ = cfg["owner"].(string)
	l.Repo, _ = cfg["repo"].(string)
	if creds, ok := cfg["credentials"].(map[string]any); ok {
		l.SecretName, _ = creds["secretName"].(string)
	}
	for _, f := range []string{"owner", "repo", "credentials"} {
		if _, ok := cfg[f]; !ok {
			ps.add(f, "is required in the v1.8 format (or use repoURL instead of owner, repo and credentials)")
		}
	}
	if l.Owner != "" && l.Repo != "" {
		if _, err := repourl.FromLegacy(l.Owner, l.Repo, "", opts); err != nil {
			ps.add("owner", "%v", err)
		}
	}
	return "", repourl.Repository{}, l
}

func containsDotDot(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '.' && s[i+1] == '.' {
			return true
		}
	}
	return false
}

// WholeNumber reads an integer that may arrive as any Go number type:
// Kargo hands int (and int64 within a call), state reloaded from JSON
// float64, a JSON config json.Number.
func WholeNumber(v any) (int64, bool) {
	switch t := v.(type) {
	case int:
		return int64(t), true
	case int32:
		return int64(t), true
	case int64:
		return t, true
	case uint64:
		return int64(t), t < 1<<63
	case float64:
		return int64(t), t == float64(int64(t))
	case json.Number:
		f, err := t.Float64()
		return int64(f), err == nil && f == float64(int64(f))
	}
	return 0, false
}

// CurrentFormat is the current-format configuration equivalent to a v1.8
// one, given the repository its Secret points at. It is what the
// deprecation warning shows.
func (d *Dispatch) CurrentFormat(repoURL string) map[string]any {
	out := map[string]any{
		"repoURL":      repoURL,
		"workflowFile": d.WorkflowFile,
		"ref":          d.Ref,
	}
	if len(d.Inputs) > 0 {
		out["inputs"] = d.Inputs
	}
	if d.Timeout != DefaultRunTimeout {
		out["timeout"] = int64(d.Timeout / time.Second)
	}
	if d.InsecureSkipTLSVerify {
		out["insecureSkipTLSVerify"] = true
	}
	if d.CorrelationInput != "" {
		out["correlationInput"] = d.CorrelationInput
	}
	return out
}
