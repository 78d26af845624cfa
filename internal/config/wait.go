package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/config/schemas"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

const (
	// WaitStepName is the step's name in a Kargo promotion template.
	WaitStepName = "gha-wait-for-workflow"
	// MinPollInterval keeps a misconfigured step from hammering the API;
	// runs take seconds at the very least.
	MinPollInterval = time.Second
)

// Conclusions are the final conclusions a run can have, as GitHub names them.
var Conclusions = []string{"success", "failure", "cancelled", "skipped", "timed_out", "action_required", "neutral", "stale"}

var waitSchema = compileSchema("gha-wait-for-workflow-config.json", schemas.WaitForWorkflow)

var waitHints = fieldHints{
	"runID":                   "use the dispatch step's output, ${{ outputs['dispatch-deployment'].runID }}",
	"outputsArtifact#pattern": "is not an artifact name, which cannot hold \" < > | * ? : \\ / or line breaks",
}

// WaitConfig is the gha-wait-for-workflow config block as written,
// current and v1.8 fields alike. Its json names are the properties of
// schemas/gha-wait-for-workflow-config.json, which stays the source of
// truth (TestConfigStructsMatchSchemas keeps the two together).
type WaitConfig struct {
	RepoFields
	// RunID is an integer of any Go type or a string of digits, as Kargo
	// hands an expression's result (see ParseRunID).
	RunID any `json:"runID,omitempty"`
	// ExpectedConclusion is nil when not given; given empty, it is wrong.
	ExpectedConclusion    *string `json:"expectedConclusion,omitempty"`
	InsecureSkipTLSVerify bool    `json:"insecureSkipTLSVerify,omitempty"`
	// PollInterval is a Go duration ("30s").
	PollInterval string `json:"pollInterval,omitempty"`
	// OutputsArtifact names the artifact holding the run's outputs.json.
	OutputsArtifact string `json:"outputsArtifact,omitempty"`
}

// Map is c as a step config map, with only the fields that are set.
func (c WaitConfig) Map() map[string]any { return encodeFields(c) }

// Wait is a validated gha-wait-for-workflow configuration.
type Wait struct {
	RepoURL string
	// Repo is RepoURL parsed; zero for a v1.8 configuration.
	Repo  repourl.Repository
	RunID int64
	// ExpectedConclusion is empty when the conclusion is only reported.
	ExpectedConclusion    string
	InsecureSkipTLSVerify bool
	// PollInterval is zero when not configured (the caller's default applies).
	PollInterval time.Duration
	// OutputsArtifact is the artifact whose outputs.json becomes the
	// step's outputs once the run succeeded; empty for none.
	OutputsArtifact string
	Legacy          *Legacy
}

// ParseWait validates cfg and converts it, reporting every problem at once.
func ParseWait(cfg map[string]any, opts repourl.Options) (*Wait, error) {
	var ps problems
	validateSchema(waitSchema, cfg, waitHints, &ps)
	var c WaitConfig
	decodeFields(cfg, &c)
	w := &Wait{InsecureSkipTLSVerify: c.InsecureSkipTLSVerify, OutputsArtifact: c.OutputsArtifact}
	// Checked when present, null included (c.RunID is nil for both):
	// absent is the schema's "is required", null is not a run ID.
	if _, ok := cfg["runID"]; ok {
		w.RunID = checkRunID(c.RunID, &ps)
	}
	w.ExpectedConclusion = checkConclusion(c.ExpectedConclusion, &ps)
	w.PollInterval = checkPollInterval(c.PollInterval, &ps)
	w.RepoURL, w.Repo, w.Legacy = parseRepoFields(cfg, c.RepoFields, opts, &ps)
	if err := ps.err(WaitStepName); err != nil {
		return nil, err
	}
	return w, nil
}

func checkRunID(v any, ps *problems) int64 {
	id, err := ParseRunID(v)
	if err != nil {
		ps.add("runID", "%v", err)
	}
	return id
}

// checkConclusion names the allowed values, which the schema's enum
// message does not do as readably.
func checkConclusion(c *string, ps *problems) string {
	switch {
	case c == nil:
		return ""
	case !contains(Conclusions, *c):
		ps.add("expectedConclusion", "%q is not a conclusion; use one of %s", *c, strings.Join(Conclusions, ", "))
		return ""
	}
	return *c
}

func checkPollInterval(s string, ps *problems) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		ps.add("pollInterval", "%q is not a Go duration such as 30s or 5m", s)
	case d < MinPollInterval:
		ps.add("pollInterval", "%s is shorter than the minimum of %s", d, MinPollInterval)
	default:
		return d
	}
	return 0
}

// ParseRunID accepts a run ID as Kargo and YAML hand it over: an integer of
// any Go type, an integral float64 (state reloaded from JSON), or a string
// of digits (an expression's result).
func ParseRunID(v any) (int64, error) {
	if s, ok := v.(string); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a run ID (a positive integer)", s)
		}
		return n, nil
	}
	n, ok := WholeNumber(v)
	if !ok || n <= 0 {
		return 0, fmt.Errorf("%v is not a run ID (a positive integer)", v)
	}
	return n, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// SchemaProblems checks cfg against the JSON Schema of step (a step name)
// alone, without the semantic checks (expressions such as runID:
// "${{ outputs... }}" pass it). It is what tools that rewrite manifests use.
func SchemaProblems(step string, cfg map[string]any) []Problem {
	var ps problems
	switch step {
	case DispatchStepName:
		validateSchema(dispatchSchema, cfg, dispatchHints, &ps)
	case WaitStepName:
		validateSchema(waitSchema, cfg, waitHints, &ps)
	default:
		return []Problem{{Message: "unknown step " + step}}
	}
	if _, ok := cfg["repoURL"]; !ok {
		ps.add("repoURL", requiredMessage)
	}
	return ps
}
