package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/config/schemas"
	"github.com/kargo-gha/kargo-gha/pkg/repourl"
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
	"runID": "use the dispatch step's output, ${{ outputs['dispatch-deployment'].runID }}",
}

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
	Legacy       *Legacy
}

// ParseWait validates cfg and converts it, reporting every problem at once.
func ParseWait(cfg map[string]any, opts repourl.Options) (*Wait, error) {
	var ps problems
	validateSchema(waitSchema, cfg, waitHints, &ps)
	w := &Wait{}
	if v, ok := cfg["runID"]; ok {
		id, err := ParseRunID(v)
		if err != nil {
			ps.add("runID", "%v", err)
		}
		w.RunID = id
	}
	if c, ok := cfg["expectedConclusion"].(string); ok && !contains(Conclusions, c) {
		ps.add("expectedConclusion", "%q is not a conclusion; use one of %s", c, strings.Join(Conclusions, ", "))
	} else {
		w.ExpectedConclusion = c
	}
	if s, ok := cfg["pollInterval"].(string); ok && s != "" {
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			ps.add("pollInterval", "%q is not a Go duration such as 30s or 5m", s)
		case d < MinPollInterval:
			ps.add("pollInterval", "%s is shorter than the minimum of %s", d, MinPollInterval)
		default:
			w.PollInterval = d
		}
	}
	w.InsecureSkipTLSVerify, _ = cfg["insecureSkipTLSVerify"].(bool)
	w.RepoURL, w.Repo, w.Legacy = parseRepoFields(cfg, opts, &ps)
	if err := ps.err(WaitStepName); err != nil {
		return nil, err
	}
	return w, nil
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

// CurrentFormat is the current-format configuration equivalent to a v1.8
// one, given the repository its Secret points at.
func (w *Wait) CurrentFormat(repoURL string) map[string]any {
	out := map[string]any{"repoURL": repoURL, "runID": w.RunID}
	if w.ExpectedConclusion != "" {
		out["expectedConclusion"] = w.ExpectedConclusion
	}
	if w.PollInterval > 0 {
		out["pollInterval"] = w.PollInterval.String()
	}
	if w.InsecureSkipTLSVerify {
		out["insecureSkipTLSVerify"] = true
	}
	return out
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
		ps.add("repoURL", "is required")
	}
	return ps
}
