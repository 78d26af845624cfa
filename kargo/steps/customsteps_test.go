package steps

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/akuity/kargo/pkg/expressions"
	"github.com/akuity/kargo/pkg/promotion"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// The custom steps of examples/custom-steps.yaml, evaluated with Kargo's
// own pkg/expressions as a promotion evaluates them: the Stage's step
// config first (EvaluateJSONTemplate), then each command argument with
// `config` and `ctx` (EvaluateTemplate; how the Akuity Platform evaluates a
// CustomPromotionStep's command is not in Kargo's source: this assumes the
// same template function, argument by argument). Every argument must
// arrive as a string, the step config must be one kargo-gha accepts, and
// the correlation seed must tell steps and promotions apart while a rerun
// gets the same one.
func TestCustomStepsExampleEvaluatesWithKargoExpressions(t *testing.T) {
	docs := exampleDocs(t)
	commands := map[string][]string{}
	for _, d := range docs {
		if d.Kind == "CustomPromotionStep" {
			commands[d.Metadata.Name] = d.Spec.Command
		}
	}
	var stage exampleDoc
	for _, d := range docs {
		if d.Kind == "Stage" {
			stage = d
		}
	}
	steps := stage.Spec.PromotionTemplate.Spec.Steps
	if len(commands) != 2 || len(steps) != 2 {
		t.Fatalf("the example has %d custom steps and %d Stage steps; want 2 and 2", len(commands), len(steps))
	}
	seeds := map[string]string{}
	for i, s := range steps {
		alias := s.As
		if alias == "" {
			alias = "step-" + string(rune('1'+i)) // Kargo's default alias
		}
		for _, promo := range []string{"uat.01jx5", "uat.01jx5", "uat.01jx6"} {
			ctx := promotion.BuildCtxMap(promotion.StepContext{Project: stage.Metadata.Namespace, Stage: stage.Metadata.Name, Promotion: promo, Alias: alias})
			cfg := evaluateStepConfig(t, s.Config, ctx)
			args := evaluateCommand(t, commands[s.Uses], cfg, ctx)
			stepCfg := parsedConfigArg(t, s.Uses, args)
			switch s.Uses {
			case "kargo-gha-dispatch":
				if _, err := config.ParseDispatch(stepCfg, repourl.Options{}); err != nil {
					t.Fatalf("%s: kargo-gha refuses the step config: %v", s.Uses, err)
				}
				seed := flagValue(t, args, "--correlation-seed")
				for _, part := range []string{stage.Metadata.Namespace, promo, alias} {
					if !strings.Contains(seed, part) {
						t.Errorf("--correlation-seed %q lacks %q", seed, part)
					}
				}
				if earlier, ok := seeds[promo]; ok && earlier != seed {
					t.Errorf("a rerun of promotion %s derives seed %q, the first %q", promo, seed, earlier)
				}
				seeds[promo] = seed
			case "kargo-gha-wait":
				if _, err := config.ParseWait(stepCfg, repourl.Options{}); err != nil {
					t.Fatalf("%s: kargo-gha refuses the step config: %v", s.Uses, err)
				}
			}
		}
	}
	if seeds["uat.01jx5"] == seeds["uat.01jx6"] {
		t.Errorf("two promotions derive one seed %q", seeds["uat.01jx5"])
	}
	// Another alias in the same promotion is another dispatch.
	ctx := promotion.BuildCtxMap(promotion.StepContext{Project: stage.Metadata.Namespace, Promotion: "uat.01jx5", Alias: "dispatch-smoke-tests"})
	other := flagValue(t, evaluateCommand(t, commands["kargo-gha-dispatch"], evaluateStepConfig(t, steps[0].Config, ctx), ctx), "--correlation-seed")
	if other == seeds["uat.01jx5"] {
		t.Errorf("two step aliases derive one seed %q", other)
	}
}

// Why the example does not use toJSON(): Kargo reads a result that looks
// like JSON back as an object, so the argument would not be a string.
func TestToJSONDoesNotArriveAsAString(t *testing.T) {
	env := map[string]any{"config": map[string]any{"step": map[string]any{"ref": "main"}}}
	for expr, wantString := range map[string]bool{
		"${{ toJSON(config.step) }}":      false,
		"${{ asJSON(config.step) }}":      true,
		"${{ unsafeQuote(config.step) }}": true,
	} {
		v, err := expressions.EvaluateTemplate(expr, env)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if _, ok := v.(string); ok != wantString {
			t.Errorf("%s gives a %T (%v)", expr, v, v)
		}
	}
}

type exampleDoc struct {
	Kind     string
	Metadata struct{ Name, Namespace string }
	Spec     struct {
		Command           []string
		PromotionTemplate struct {
			Spec struct {
				Steps []struct {
					Uses, As string
					Config   map[string]any
				}
			}
		}
	}
}

func exampleDocs(t *testing.T) []exampleDoc {
	t.Helper()
	data, err := os.ReadFile("../../examples/custom-steps.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var docs []exampleDoc
	for _, part := range strings.Split(string(data), "\n---\n") {
		var d exampleDoc
		if err := yaml.Unmarshal([]byte(part), &d); err != nil {
			t.Fatalf("examples/custom-steps.yaml: %v", err)
		}
		docs = append(docs, d)
	}
	return docs
}

// evaluateStepConfig evaluates a Stage step's config as the promotion
// does, with stand-ins for the data functions it calls (secret, imageFrom)
// and the outputs of the dispatch step.
func evaluateStepConfig(t *testing.T, raw map[string]any, ctx map[string]any) map[string]any {
	t.Helper()
	doc, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]any{
		"ctx":       ctx["ctx"],
		"vars":      map[string]any{"imageRepo": "ghcr.io/myorg/my-app"},
		"outputs":   map[string]any{"dispatch-deployment": map[string]any{"runID": 7421}},
		"secret":    func(name string) map[string]string { return map[string]string{"token": "ghp_example"} },
		"imageFrom": func(repo string) map[string]any { return map[string]any{"Tag": "1.10"} },
	}
	out, err := expressions.EvaluateJSONTemplate(doc, env)
	if err != nil {
		t.Fatalf("evaluating the step config: %v", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// evaluateCommand evaluates a custom step's command, each argument a
// string, with the step's config and ctx.
func evaluateCommand(t *testing.T, command []string, cfg, ctx map[string]any) []string {
	t.Helper()
	env := map[string]any{"config": cfg, "ctx": ctx["ctx"]}
	args := make([]string, len(command))
	for i, a := range command {
		v, err := expressions.EvaluateTemplate(a, env)
		if err != nil {
			t.Fatalf("argument %q: %v", a, err)
		}
		s, ok := v.(string)
		if !ok {
			t.Fatalf("argument %q arrives as a %T, not a string: %v", a, v, v)
		}
		args[i] = s
	}
	return args
}

func parsedConfigArg(t *testing.T, step string, args []string) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal([]byte(flagValue(t, args, "--config-json")), &cfg); err != nil {
		t.Fatalf("%s: --config-json is not a JSON object: %v", step, err)
	}
	return cfg
}

func flagValue(t *testing.T, args []string, flag string) string {
	t.Helper()
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("no %s in %q", flag, args)
	return ""
}
