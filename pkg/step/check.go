package step

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/workflowfile"
)

// Report is a dry run of a gha-dispatch-workflow step (see Runner.Check).
type Report = workflowfile.Report

// Check is a dry run of gha-dispatch-workflow: it reads the workflow file at
// the step's ref and reports every problem of the step against it, and what
// the credentials may do, dispatching nothing. Values that are ${{ }}
// expressions (a promotion template before Kargo evaluates it) are reported
// as not checked, never guessed; when the repository, workflow or ref is one,
// nothing can be read and the report says only that. A configuration the
// step itself would refuse is the error.
func (r *Runner) Check(ctx context.Context, sc *Context) (*Report, error) {
	cfgMap, values, notChecked, blocked := withoutExpressions(sc.Config)
	if len(blocked) > 0 {
		return &Report{
			Workflow: fmt.Sprint(sc.Config["workflowFile"]), Ref: fmt.Sprint(sc.Config["ref"]), Problems: []workflowfile.Problem{},
			NotChecked: append(blocked, notChecked...),
		}, nil
	}
	cfg, err := config.ParseDispatch(cfgMap, r.URLOptions)
	if err != nil {
		if cfg, err = parseOverInputLimit(cfgMap, r.URLOptions, err); err != nil {
			return nil, err
		}
	}
	t, err := r.target(ctx, sc, cfg.Repo, cfg.RepoURL, cfg.Legacy, cfg.InsecureSkipTLSVerify)
	if err != nil {
		return nil, err
	}
	d := workflowfile.Dispatch{Inputs: map[string]workflowfile.Value{}, CorrelationInput: cfg.CorrelationInput}
	for k, v := range cfg.Inputs {
		d.Inputs[k] = workflowfile.Value{Text: v}
	}
	for k := range values {
		d.Inputs[k] = workflowfile.Value{Text: values[k], Unknown: true}
	}
	cctx, cancel := r.call(ctx)
	defer cancel()
	rep := workflowfile.DryRun(cctx, t.client, workflowfile.Shared, cfg.WorkflowFile, cfg.Ref, d)
	rep.NotChecked = append(notChecked, rep.NotChecked...)
	return rep, nil
}

// The fields without which no file can be read.
var locating = map[string]bool{"repoURL": true, "owner": true, "repo": true, "workflowFile": true, "ref": true}

// withoutExpressions is the config with every ${{ }} value taken out: an
// input's expression becomes a placeholder the config accepts (its text
// kept in values, checked only for being declared); any other field's is
// dropped and named in notChecked; a locating field's is named in blocked.
func withoutExpressions(cfg map[string]any) (out map[string]any, values map[string]string, notChecked, blocked []string) {
	out, values = map[string]any{}, map[string]string{}
	for k, v := range cfg {
		switch {
		case k == "inputs":
			out[k] = inputsWithout(v, values, &notChecked)
		case !isExpression(v):
			out[k] = v
		case locating[k]:
			blocked = append(blocked, k+" (an expression: the file it names cannot be read before the promotion)")
		default:
			notChecked = append(notChecked, k+" (an expression)")
		}
	}
	sort.Strings(notChecked)
	sort.Strings(blocked)
	return out, values, notChecked, blocked
}

func inputsWithout(v any, values map[string]string, notChecked *[]string) any {
	m, ok := v.(map[string]any)
	if !ok {
		if isExpression(v) {
			*notChecked = append(*notChecked, "inputs (an expression)")
			return nil
		}
		return v
	}
	in := make(map[string]any, len(m))
	for k, val := range m {
		if isExpression(val) {
			values[k] = val.(string)
			in[k] = "" // any string passes the config; the value is not checked
			continue
		}
		in[k] = val
	}
	return in
}

func isExpression(v any) bool {
	s, ok := v.(string)
	return ok && strings.Contains(s, "${{")
}

// cachedRunNameProblem is, for a dispatch with a correlation input, the
// refusal of a workflow whose run-name (in a file this process read
// lately) does not carry that input: its runs would never be found by
// their key. It sends nothing; without the file cached it says nothing.
func cachedRunNameProblem(c *ghclient.Client, cfg *config.Dispatch) error {
	if cfg.CorrelationInput == "" {
		return nil
	}
	f, ok := workflowfile.Shared.Cached(c, cfg.WorkflowFile, cfg.Ref)
	if !ok || workflowfile.RunNameCarries(f.RunName, cfg.CorrelationInput) {
		return nil
	}
	return fmt.Errorf("correlationInput %q: the run-name of %s at %s (%q) does not contain ${{ inputs.%s }}, so its runs would not carry the key and the run would never be found; nothing was dispatched: add the input to run-name",
		cfg.CorrelationInput, cfg.WorkflowFile, cfg.Ref, f.RunName, cfg.CorrelationInput)
}
