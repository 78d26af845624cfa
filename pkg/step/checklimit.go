package step

import (
	"sort"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// parseOverInputLimit parses, for a dry run, a config the step refuses for
// its number of inputs alone, so that the dry run still reports every other
// problem (undeclared inputs, bad values, the run-name) beside the count,
// which the workflow file check reports itself. The inputs are checked in
// groups the step accepts, each as the step checks them; anything else
// wrong, or too long a payload, leaves parseErr the answer.
func parseOverInputLimit(cfg map[string]any, opts repourl.Options, parseErr error) (*config.Dispatch, error) {
	inputs, ok := cfg["inputs"].(map[string]any)
	if !ok || len(inputs) < config.MaxInputs {
		return nil, parseErr
	}
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	var d *config.Dispatch
	merged := map[string]string{}
	for start := 0; start < len(names); start += config.MaxInputs - 1 { // one left for a correlation input
		group := map[string]any{}
		for _, n := range names[start:min(start+config.MaxInputs-1, len(names))] {
			group[n] = inputs[n]
		}
		part := make(map[string]any, len(cfg))
		for k, v := range cfg {
			part[k] = v
		}
		part["inputs"] = group
		pd, err := config.ParseDispatch(part, opts)
		if err != nil {
			return nil, parseErr
		}
		for k, v := range pd.Inputs {
			merged[k] = v
		}
		d = pd
	}
	if config.InputsLength(merged) > config.MaxInputsLength {
		return nil, parseErr
	}
	d.Inputs = merged
	return d, nil
}
