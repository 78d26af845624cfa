package config

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/config/schemas"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
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
	"expectedHeadSHA":      "a full commit ID, 40 or 64 hex digits, such as ${{ commitFrom(vars.gitRepo).ID }}",
	// The schema's pattern is a regular expression: say what it means.
	"correlationInput#pattern": "is not a workflow input name (a letter or _, then letters, digits, _ or -)",
	"expectedHeadSHA#pattern":  "is not a full commit ID (40 or 64 hex digits), such as ${{ commitFrom(vars.gitRepo).ID }}",
}

// DispatchConfig is the gha-dispatch-workflow config block as written,
// current and v1.8 fields alike. Its json names are the properties of
// schemas/gha-dispatch-workflow-config.json, which stays the source of
// truth (TestConfigStructsMatchSchemas keeps the two together).
type DispatchConfig struct {
	RepoFields
	WorkflowFile string `json:"workflowFile,omitempty"`
	Ref          string `json:"ref,omitempty"`
	// Inputs hold the values as given (strings, numbers of any Go type,
	// booleans); ParseDispatch renders them to the strings sent.
	Inputs map[string]any `json:"inputs,omitempty"`
	// Timeout is in seconds; zero means DefaultRunTimeout.
	Timeout               int64  `json:"timeout,omitempty"`
	InsecureSkipTLSVerify bool   `json:"insecureSkipTLSVerify,omitempty"`
	CorrelationInput      string `json:"correlationInput,omitempty"`
	// ExpectedHeadSHA and CancelOnMismatch: see Dispatch (commit.go).
	ExpectedHeadSHA  string `json:"expectedHeadSHA,omitempty"`
	CancelOnMismatch bool   `json:"cancelOnMismatch,omitempty"`
}

// Map is c as a step config map, with only the fields that are set.
func (c DispatchConfig) Map() map[string]any { return encodeFields(c) }

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
	// ExpectedHeadSHA is the commit the run must build (lower-case), or
	// empty; CancelOnMismatch cancels a run that builds another.
	ExpectedHeadSHA  string
	CancelOnMismatch bool
	// Legacy is set when the configuration uses the v1.8 format.
	Legacy *Legacy
}

// ParseDispatch validates cfg, the step's config block after Kargo has
// evaluated its expressions, and converts it. Every problem is reported at
// once in a *Error; nothing is sent to GitHub for an invalid configuration.
func ParseDispatch(cfg map[string]any, opts repourl.Options) (*Dispatch, error) {
	var ps problems
	validateSchema(dispatchSchema, cfg, dispatchHints, &ps)
	var c DispatchConfig
	decodeFields(cfg, &c)
	d := c.convert(&ps)
	d.RepoURL, d.Repo, d.Legacy = parseRepoFields(cfg, c.RepoFields, opts, &ps)
	if err := ps.err(DispatchStepName); err != nil {
		return nil, err
	}
	return d, nil
}

// convert checks what the schema cannot (git's ref rules, how inputs
// render, a correlation input that inputs also set) and converts all but
// the repository fields.
func (c *DispatchConfig) convert(ps *problems) *Dispatch {
	d := &Dispatch{WorkflowFile: c.WorkflowFile, Ref: c.Ref, Timeout: DefaultRunTimeout,
		InsecureSkipTLSVerify: c.InsecureSkipTLSVerify, CorrelationInput: c.CorrelationInput}
	if strings.Contains(c.WorkflowFile, "..") {
		ps.add("workflowFile", "%q must not contain '..'", c.WorkflowFile)
	}
	if c.Ref != "" {
		if err := checkRef(c.Ref); err != nil {
			ps.add("ref", "%v", err)
		}
	}
	c.convertCommit(d, ps)
	d.Inputs = renderInputs(c.Inputs, ps)
	// Out of range the schema has said so; the default keeps d usable.
	if c.Timeout >= 1 && c.Timeout <= int64(MaxRunTimeout/time.Second) {
		d.Timeout = time.Duration(c.Timeout) * time.Second
	}
	if _, clash := d.Inputs[c.CorrelationInput]; clash && c.CorrelationInput != "" {
		ps.add("inputs."+c.CorrelationInput, "is set by correlationInput, which puts the correlation key there; remove it from inputs")
	} else if c.CorrelationInput != "" && len(c.Inputs) == MaxInputs {
		// The key travels as one more input: GitHub would refuse the 26th with 422.
		ps.add("inputs", "has %d entries and correlationInput adds one; GitHub accepts at most %d", len(c.Inputs), MaxInputs)
	}
	return d
}

// parseRepoFields picks the format: repoURL (current) or owner, repo and
// credentials (v1.8). Which fields are present in cfg decides, whatever
// their values (a repoURL of the wrong type is still a repoURL, reported by
// the schema). Mixing the formats is an error because it is ambiguous
// which repository and credentials the user means.
func parseRepoFields(cfg map[string]any, f RepoFields, opts repourl.Options, ps *problems) (string, repourl.Repository, *Legacy) {
	_, hasURL := cfg[fieldRepoURL]
	given := presentFields(cfg, legacyFields)
	switch {
	case hasURL && len(given) > 0:
		for _, k := range given {
			ps.add(k, "cannot be combined with repoURL: %s belongs to the deprecated v1.8 format; remove it and keep repoURL", k)
		}
		return "", repourl.Repository{}, nil
	case hasURL:
		return f.RepoURL, parseRepoURL(f.RepoURL, opts, ps), nil
	case len(given) == 0:
		ps.add(fieldRepoURL, requiredMessage)
		return "", repourl.Repository{}, nil
	}
	return "", repourl.Repository{}, parseLegacy(cfg, f, opts, ps)
}

func parseRepoURL(raw string, opts repourl.Options, ps *problems) repourl.Repository {
	if raw == "" {
		return repourl.Repository{} // absent or not a string: the schema said so
	}
	repo, err := repourl.Parse(raw, opts)
	if err != nil {
		ps.add(fieldRepoURL, "%v", err)
	}
	return repo
}

// parseLegacy checks a v1.8 configuration. Its host is unknown until the
// credentials Secret is read, so owner and repo are checked as github.com
// would take them.
func parseLegacy(cfg map[string]any, f RepoFields, opts repourl.Options, ps *problems) *Legacy {
	l := &Legacy{Owner: f.Owner, Repo: f.Repo}
	if f.Credentials != nil {
		l.SecretName = f.Credentials.SecretName
	}
	for _, k := range legacyFields {
		if _, ok := cfg[k]; !ok {
			ps.add(k, "is required in the v1.8 format (or use repoURL instead of owner, repo and credentials)")
		}
	}
	if l.Owner != "" && l.Repo != "" {
		if _, err := repourl.FromLegacy(l.Owner, l.Repo, "", opts); err != nil {
			ps.add(fieldOwner, "%v", err)
		}
	}
	return l
}

// presentFields are those of names that cfg has, in the order of names.
func presentFields(cfg map[string]any, names []string) []string {
	var out []string
	for _, k := range names {
		if _, ok := cfg[k]; ok {
			out = append(out, k)
		}
	}
	return out
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

// WaitStep is the gha-wait-for-workflow configuration for run runID,
// which d dispatched: the same repository in the same format (so the same
// credentials are used) and the same TLS setting.
func (d *Dispatch) WaitStep(runID int64) WaitConfig {
	w := WaitConfig{RunID: runID, InsecureSkipTLSVerify: d.InsecureSkipTLSVerify}
	if d.Legacy == nil {
		w.RepoURL = d.RepoURL
		return w
	}
	w.Owner, w.Repo = d.Legacy.Owner, d.Legacy.Repo
	w.Credentials = &SecretRef{SecretName: d.Legacy.SecretName}
	return w
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
	if d.ExpectedHeadSHA != "" {
		out["expectedHeadSHA"] = d.ExpectedHeadSHA
	}
	if d.CancelOnMismatch {
		out["cancelOnMismatch"] = true
	}
	return out
}
