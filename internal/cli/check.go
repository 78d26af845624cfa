package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/pkg/step"
)

const (
	// maxManifestValues bounds the values it expands to (aliases).
	maxManifestValues = 200000
	// maxCheckedSteps bounds the steps checked, each two or three GETs.
	maxCheckedSteps = 200
)

// CheckOptions are the inputs of `kargo-gha check`.
type CheckOptions struct {
	Factory     *Factory
	File        string
	AllowHTTP   bool
	Credentials credentialFlags
}

// NewCmdCheck builds `kargo-gha check FILE`. runF replaces the work in
// tests of flag handling.
func NewCmdCheck(f *Factory, runF func(context.Context, *CheckOptions) error) *cobra.Command {
	opts := &CheckOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Dry-run every gha-dispatch-workflow step of Kargo manifests against its workflow file",
		Long: `Read Stage, PromotionTask and ClusterPromotionTask manifests (YAML, many
documents; "-" for stdin) and, for every gha-dispatch-workflow step in them,
read the workflow file at the step's ref (one conditional request each) and
report every problem at once: no workflow_dispatch trigger, inputs the
workflow does not declare, required inputs missing, values that are not one
of a choice's options or not a boolean or number, more than 25 inputs, a
correlationInput that the workflow's run-name does not contain, and
credentials that cannot read runs or dispatch. Nothing is dispatched.

Values that are ${{ }} expressions are reported as not checked: only the
promotion can evaluate them. Credentials are found as for dispatch.

Prints {"steps": [...]} as JSON on stdout. Exit codes: 0 no problems; 1
problems (each named on stderr) or a step configuration the step refuses;
75 GitHub could not be asked (retry later).`,
		Example: `  GH_TOKEN=... kargo-gha check stages.yaml
  kargo-gha check --credentials-file secrets.yaml --project my-project stages.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runCheck(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.AllowHTTP, "allow-http", false, "allow plain-text http:// repository URLs")
	opts.Credentials.register(fl)
	return cmd
}

// checkedStep is one step's dry run as printed.
type checkedStep struct {
	Manifest string `json:"manifest"`
	Step     string `json:"step"`
	*step.Report
	Error string `json:"error,omitempty"`
}

func runCheck(ctx context.Context, o *CheckOptions) error {
	f := o.Factory
	data, _, err := readManifest(f, o.File) // migrate.go: "-" is stdin; bounded
	if err != nil {
		return err
	}
	steps, err := dispatchSteps(data)
	if err != nil {
		return failure.Final(fmt.Errorf("%s: %w", o.File, err))
	}
	if len(steps) == 0 {
		return failure.Final(fmt.Errorf("%s has no %s step (in a Stage's spec.promotionTemplate.spec.steps or a PromotionTask's spec.steps)", o.File, config.DispatchStepName))
	}
	look, err := newLookups(f, o.Credentials)
	if err != nil {
		return err
	}
	r := f.Runner.WithURLOptions(repourl.Options{AllowHTTP: o.AllowHTTP})
	results := make([]checkedStep, 0, len(steps))
	problems, transient := 0, false
	for _, s := range steps {
		sc := &step.Context{Alias: s.alias, Config: s.config, Credentials: look.git, LegacyCredentials: look.legacy}
		rep, err := r.Check(ctx, sc)
		res := checkedStep{Manifest: s.manifest, Step: s.alias, Report: rep}
		if err != nil {
			res.Error = err.Error()
			transient = transient || !failure.IsFinal(err)
			problems++
			progress(f, "%s step %s: %v", s.manifest, s.alias, err)
		} else {
			problems += len(rep.Problems)
			transient = transient || rep.Transient
			printProblems(f, s.manifest+" step "+s.alias, rep)
		}
		results = append(results, res)
	}
	if err := printJSON(f, map[string]any{"steps": results}); err != nil {
		return err
	}
	return checkVerdict(problems, transient)
}

func checkVerdict(problems int, transient bool) error {
	switch {
	case problems == 0:
		return nil
	case transient:
		return failure.Transient(fmt.Errorf("%s, some because GitHub could not be asked; nothing was dispatched", countProblems(problems)))
	}
	return failure.Final(fmt.Errorf("%s found; nothing was dispatched", countProblems(problems)))
}

func countProblems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

// runDryRun is `kargo-gha dispatch --dry-run`: the step's dry run.
func runDryRun(ctx context.Context, o *DispatchOptions) error {
	f := o.Factory
	if o.AndWait {
		return failure.Final(errors.New("--dry-run dispatches nothing, so there is no run for --wait: give one of them"))
	}
	raw, err := o.stepConfig()
	if err != nil {
		return err
	}
	look, err := newLookups(f, o.Credentials)
	if err != nil {
		return err
	}
	r := f.Runner.WithURLOptions(repourl.Options{AllowHTTP: o.AllowHTTP})
	rep, err := r.Check(ctx, &step.Context{Alias: "dispatch", Config: raw, Credentials: look.git, LegacyCredentials: look.legacy})
	if err != nil {
		return err
	}
	printProblems(f, "dry run", rep)
	if err := printJSON(f, map[string]any{"dryRun": rep}); err != nil {
		return err
	}
	return checkVerdict(len(rep.Problems), rep.Transient)
}

func printProblems(f *Factory, what string, rep *step.Report) {
	for _, p := range rep.Problems {
		progress(f, "%s: %s", what, p)
	}
	for _, n := range rep.NotChecked {
		progress(f, "%s: not checked: %s", what, n)
	}
	if rep.OK() {
		progress(f, "%s: %s", what, okLine(rep))
	}
}

// okLine says what a dry run without problems checked: a file never read
// (its location an expression) is not "no problems".
func okLine(rep *step.Report) string {
	switch {
	case rep.Path == "":
		return fmt.Sprintf("%s at %s not read, so not checked; nothing was dispatched", rep.Workflow, rep.Ref)
	case len(rep.NotChecked) > 0:
		return fmt.Sprintf("%s %s at %s: no problems in what could be checked; nothing was dispatched", rep.Repository, rep.Workflow, rep.Ref)
	}
	return fmt.Sprintf("%s %s at %s: no problems; nothing was dispatched", rep.Repository, rep.Workflow, rep.Ref)
}

// printJSON prints v, its strings cleaned as every output is, on stdout.
func printJSON(f *Factory, v any) error {
	b, err := json.Marshal(cleanOutput(v))
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f.IO.Out, string(b)); err != nil {
		return failure.Final(fmt.Errorf("writing the report to stdout: %w", err))
	}
	return nil
}

// manifestStep is a gha-dispatch-workflow step found in a manifest.
type manifestStep struct {
	manifest string // Kind/name
	alias    string // its as:, else its position
	config   map[string]any
}

// dispatchSteps finds every gha-dispatch-workflow step in the documents.
func dispatchSteps(data []byte) ([]manifestStep, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	budget := &nodeDecoder{budget: maxManifestValues}
	var out []manifestStep
	for i := 1; ; i++ {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("document %d is not YAML: %w", i, err)
		}
		v, err := budget.value(&n, 0)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		doc, _ := v.(map[string]any)
		for _, s := range stepsOf(doc) {
			if len(out) == maxCheckedSteps {
				return nil, fmt.Errorf("more than %d %s steps; check the file in parts", maxCheckedSteps, config.DispatchStepName)
			}
			out = append(out, s)
		}
	}
}

func stepsOf(doc map[string]any) []manifestStep {
	kind, _ := doc["kind"].(string)
	meta, _ := doc["metadata"].(map[string]any)
	spec, _ := doc["spec"].(map[string]any)
	var steps []any
	switch kind {
	case "Stage":
		tmpl, _ := spec["promotionTemplate"].(map[string]any)
		tspec, _ := tmpl["spec"].(map[string]any)
		steps, _ = tspec["steps"].([]any)
	case "PromotionTask", "ClusterPromotionTask":
		steps, _ = spec["steps"].([]any)
	}
	name := fmt.Sprintf("%s/%v", kind, meta["name"])
	var out []manifestStep
	for i, s := range steps {
		m, _ := s.(map[string]any)
		if m["uses"] != config.DispatchStepName {
			continue
		}
		alias, _ := m["as"].(string)
		if strings.TrimSpace(alias) == "" {
			alias = fmt.Sprintf("#%d", i+1)
		}
		cfg, _ := m["config"].(map[string]any)
		if cfg == nil {
			cfg = map[string]any{}
		}
		out = append(out, manifestStep{manifest: name, alias: alias, config: cfg})
	}
	return out
}
