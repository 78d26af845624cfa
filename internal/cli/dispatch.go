package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/step"
)

// DispatchOptions are the inputs of `kargo-gha dispatch`.
type DispatchOptions struct {
	Factory *Factory

	ConfigFile string
	ConfigJSON string
	// Overrides, applied over the configuration when set.
	RepoURL          string
	WorkflowFile     string
	Ref              string
	Inputs           []string
	Timeout          time.Duration
	Insecure         bool
	AllowHTTP        bool
	CorrelationInput string
	CorrelationID    string
	CorrelationSeed  string
	Settle           time.Duration
	// Commit holds --expected-head-sha and --cancel-on-mismatch (commitflags.go).
	Commit      commitFlags
	Credentials credentialFlags
	// AndWait makes dispatch wait for the run (--wait).
	AndWait bool
	// DryRun checks the dispatch against the workflow file instead (--dry-run).
	DryRun bool
	Wait   waitFlags
	// given tells whether a flag was typed (waitonly.go).
	given func(name string) bool
}

// NewCmdDispatch builds `kargo-gha dispatch`. runF replaces the work in
// tests of flag handling.
func NewCmdDispatch(f *Factory, runF func(context.Context, *DispatchOptions) error) *cobra.Command {
	opts := &DispatchOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "dispatch",
		Short: "Dispatch a GitHub Actions workflow and print the ID of the run it created",
		Long: `Dispatch a workflow with the workflow_dispatch event, exactly as the
gha-dispatch-workflow promotion step does, and print {"runID": ...} on stdout.

The configuration is the step's config block (current or v1.8 format), from
--config (YAML or JSON file, "-" for stdin) or --config-json; flags complete or
override it. Credentials, the first that applies: a Kargo Git-credential Secret
for the repository in --credentials-file (for a v1.8 configuration, the Secret
named by credentials.secretName); GH_TOKEN or GITHUB_TOKEN (for an
Enterprise Server host GH_ENTERPRISE_TOKEN or GITHUB_ENTERPRISE_TOKEN
first); GITHUB_APP_CLIENT_ID or GITHUB_APP_ID with GITHUB_APP_INSTALLATION_ID
and GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE.

The dispatch is sent at most once. When GitHub does not name the run in its
answer, the run is found by listing the workflow's runs for up to --timeout;
with --correlation-input, by the key that input carries into the run's title.
Exit codes: 0 the run was created and printed; 1 failure (after a dispatch
that may have started a run, the message says where to look); 2 the command
line is wrong; 75 nothing was dispatched and a retry may succeed; 130
interrupted.`,
		Example: `  # From flags, with a token in the environment
  GH_TOKEN=... kargo-gha dispatch --repo-url https://github.com/myorg/my-app \
    --workflow-file deploy.yml --ref main --input environment=prod --input image_tag=1.10

  # From a step's config block, credentials from Kargo Secret manifests
  kargo-gha dispatch --config step.yaml --credentials-file secrets.yaml

  # Exact attribution on any host: the workflow declares the input dispatch_key
  # and has run-name: Deploy ${{ inputs.dispatch_key }}
  kargo-gha dispatch --config step.yaml --correlation-input dispatch_key

  # Dispatch, then wait for the run to succeed
  kargo-gha dispatch --config step.yaml --wait --expected-conclusion success

  # In a Kargo custom step (examples/custom-steps.yaml): the step config passed
  # through as a string with asJSON(), a rerun of the step finds its run again
  kargo-gha dispatch --config-json '${{ asJSON(config.step) }}' \
    --correlation-seed '${{ ctx.project }}/${{ ctx.promotion }}/${{ ctx.meta.step.alias }}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			err := runDispatch(cmd.Context(), opts)
			return opts.inFlagTerms(err)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.ConfigFile, "config", "", "step configuration file, YAML or JSON (\"-\" for stdin)")
	fl.StringVar(&opts.ConfigJSON, "config-json", "", "step configuration as a JSON string")
	fl.StringVar(&opts.RepoURL, "repo-url", "", "repository URL (https://github.com/OWNER/REPO or a GitHub Enterprise Server URL)")
	fl.StringVar(&opts.WorkflowFile, "workflow-file", "", "workflow file name in .github/workflows (deploy.yml)")
	fl.StringVar(&opts.Ref, "ref", "", "branch or tag to run the workflow on")
	fl.StringArrayVar(&opts.Inputs, "input", nil, "workflow input as key=value (repeatable; the value is sent as a string)")
	fl.Var(durationValue{&opts.Timeout}, "timeout", "how long to look for the run when GitHub does not name it: seconds (120) or a duration (2m); default 60s, max 300s")
	fl.BoolVar(&opts.Insecure, "insecure-skip-tls-verify", false, "skip TLS verification of the GitHub API (test servers only)")
	fl.BoolVar(&opts.AllowHTTP, "allow-http", false, "allow plain-text http:// repository URLs (the token crosses the network unencrypted)")
	fl.StringVar(&opts.CorrelationInput, "correlation-input", "", "workflow input that receives a unique key; with ${{ inputs.NAME }} in the workflow's run-name the run is found by it, exactly")
	fl.StringVar(&opts.CorrelationID, "correlation-id", "", "the key to put into --correlation-input (8-64 letters, digits, '.', '_', '-'); the same key is the same dispatch: when a run of the last hour already carries it, that run is printed and nothing is dispatched; default: a random one")
	fl.StringVar(&opts.CorrelationSeed, "correlation-seed", "", "derive the key from this text instead (a custom step's ${{ ctx.project }}/${{ ctx.promotion }}/${{ ctx.meta.step.alias }}): a rerun with the same text is the same dispatch; ignored without a correlation input")
	fl.Var(durationValue{&opts.Settle}, "settle", "without run details or a correlation key: how long after the dispatch GitHub is assumed to have created its run; a lone run is taken only after this with no second one (default 10s)")
	opts.Commit.register(cmd)
	opts.Credentials.register(fl)
	fl.BoolVar(&opts.AndWait, "wait", false, "then wait for the run to finish, as gha-wait-for-workflow does, and add its conclusion to the output")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "dispatch nothing: read the workflow file at --ref and report every problem of this dispatch (and whether the credentials can dispatch); exit 1 when there is one")
	opts.Wait.register(cmd, "wait-timeout")
	opts.given = fl.Changed
	return cmd
}

// inFlagTerms tells the configuration's problems in the flags' names.
func (o *DispatchOptions) inFlagTerms(err error) error {
	typed, ferr := o.flagConfig()
	if ferr != nil {
		return err
	}
	return inFlagTerms(err, dispatchFlagFields, typed.Map(), o.ConfigFile != "" || o.ConfigJSON != "")
}

// stepConfig merges the configuration file and the flags into the step's
// config map.
func (o *DispatchOptions) stepConfig() (map[string]any, error) {
	cfg, err := readConfig(o.Factory, o.ConfigFile, o.ConfigJSON)
	if err != nil {
		return nil, err
	}
	flags, err := o.flagConfig()
	if err != nil {
		return nil, err
	}
	cfg = overlay(cfg, flags.Map())
	if err := o.Commit.check(cfg); err != nil {
		return nil, err
	}
	if err := o.checkSettle(cfg); err != nil {
		return nil, err
	}
	if o.CorrelationSeed != "" && o.CorrelationID != "" {
		return nil, failure.Final(errors.New("--correlation-seed and --correlation-id both choose the key: give one"))
	}
	if o.CorrelationID != "" {
		if err := dispatch.ValidKey(o.CorrelationID); err != nil {
			return nil, failure.Final(fmt.Errorf("--correlation-id %w", err))
		}
		if cfg["correlationInput"] == nil {
			return nil, failure.Final(errors.New("--correlation-id needs --correlation-input (or correlationInput in the configuration): the input the key travels in"))
		}
	}
	return cfg, nil
}

// correlationKey is the key the flags choose: --correlation-id as given,
// or one derived from --correlation-seed and the step's configuration, so
// that a rerun of the same step is the same dispatch and two different
// steps of one promotion are not.
func (o *DispatchOptions) correlationKey(cfg map[string]any) string {
	if o.CorrelationSeed == "" {
		return o.CorrelationID
	}
	canonical, _ := json.Marshal(cfg) // map keys sorted: the same config, the same bytes
	return dispatch.KeyFromSeed(o.CorrelationSeed + "\x00" + string(canonical))
}

// flagConfig is the configuration the flags give: the one place flags
// become config fields. A flag not given leaves its field unset, so that
// the configuration file's value stands.
func (o *DispatchOptions) flagConfig() (config.DispatchConfig, error) {
	c := config.DispatchConfig{
		WorkflowFile: o.WorkflowFile, Ref: o.Ref, InsecureSkipTLSVerify: o.Insecure,
		CorrelationInput: o.CorrelationInput,
	}
	c.RepoURL = o.RepoURL
	if err := o.Commit.apply(&c); err != nil {
		return c, err
	}
	if o.Timeout > 0 {
		if o.Timeout%time.Second != 0 {
			return c, failure.Final(fmt.Errorf("--timeout %s must be a whole number of seconds", o.Timeout))
		}
		c.Timeout = int64(o.Timeout / time.Second)
	}
	for _, kv := range o.Inputs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return c, failure.Final(fmt.Errorf("--input %q must be key=value", kv))
		}
		if c.Inputs == nil {
			c.Inputs = map[string]any{}
		}
		c.Inputs[k] = v
	}
	return c, nil
}

func runDispatch(ctx context.Context, o *DispatchOptions) error {
	if err := o.refuseWaitFlagsWithoutWait(); err != nil {
		return err
	}
	if o.DryRun {
		return runDryRun(ctx, o)
	}
	f := o.Factory
	raw, err := o.stepConfig()
	if err != nil {
		return err
	}
	out, err := newOutput(f)
	if err != nil {
		return err
	}
	look, err := newLookups(f, o.Credentials)
	if err != nil {
		return err
	}
	r := f.Runner.WithURLOptions(repourl.Options{AllowHTTP: o.AllowHTTP})
	if err := o.checkWaitFlags(r, raw); err != nil {
		return err
	}
	sc := &step.Context{
		Alias: "dispatch", Config: raw, Credentials: look.git, LegacyCredentials: look.legacy,
		CorrelationKey: o.correlationKey(raw), Settle: o.Settle, Log: progressLog(newLogPrinter(f)),
	}
	res, stop, err := driver{clock: r.Clock, idle: time.Second}.drive(ctx, r.Dispatch, sc)
	if stop != nil {
		return step.DispatchStopped(res.Output, stop)
	}
	if err != nil {
		return err
	}
	progress(f, "%s", res.Message)
	for _, k := range []string{"runID", "runURL", "htmlURL", "attribution", "correlationKey", "headSHA", "headBranch", "links"} {
		if v, ok := res.Output[k]; ok && v != "" {
			out.set(k, v)
		}
	}
	if !o.AndWait {
		return out.emit()
	}
	return o.waitAfterDispatch(ctx, r, raw, look, out)
}

// waitAfterDispatch waits for the dispatched run. Whatever happens the run
// ID is printed, and every failure is final: the dispatch happened, and a
// retry of the whole command would start a second run.
func (o *DispatchOptions) waitAfterDispatch(ctx context.Context, r *step.Runner, dispatchCfg map[string]any, look *lookups, out *output) error {
	f := o.Factory
	var res step.Result
	cfg, err := o.waitConfig(r, dispatchCfg, out.values["runID"])
	if err == nil {
		res, err = waitForRun(ctx, f, r, cfg, look, o.Wait.Timeout)
	}
	for _, k := range []string{"conclusion", "runAttempt", "failedJobs", "failure", "outputs", "headSHA", "headBranch", "links"} {
		if v, ok := res.Output[k]; ok {
			out.set(k, v)
		}
	}
	if emitErr := out.emit(); err == nil {
		return emitErr
	}
	if res.Status == step.StatusFailed {
		return err // the run finished the wrong way: the message says how
	}
	return failure.Final(fmt.Errorf("%w; run %v was dispatched: wait for it with kargo-gha wait, do not dispatch again", err, out.values["runID"]))
}

// checkWaitFlags refuses, before anything is dispatched, wait flags that
// the wait after the dispatch would refuse (--expected-conclusion,
// --poll-interval): found after the dispatch, they would leave a run
// started and nobody waiting for it. A dispatch configuration the step
// refuses is left to the step, which names its problems.
func (o *DispatchOptions) checkWaitFlags(r *step.Runner, dispatchCfg map[string]any) error {
	if !o.AndWait {
		return nil
	}
	d, err := config.ParseDispatch(dispatchCfg, r.URLOptions)
	if err != nil {
		return nil
	}
	w := d.WaitStep(1) // any run ID: the flags are checked, not the run
	o.Wait.apply(&w)
	if _, err := config.ParseWait(w.Map(), r.URLOptions); err != nil {
		var typed config.WaitConfig
		o.Wait.apply(&typed)
		return failure.Final(inFlagTerms(err, waitFlagFields, typed.Map(), false))
	}
	return nil
}

// waitConfig is the wait step's config for the run the dispatch started:
// built from the dispatch's parsed config (the same repository, format,
// credentials and TLS setting), then the wait flags. The step layer takes
// a config map, as Kargo hands it, so that is what comes out.
func (o *DispatchOptions) waitConfig(r *step.Runner, dispatchCfg map[string]any, runID any) (map[string]any, error) {
	d, err := config.ParseDispatch(dispatchCfg, r.URLOptions) // the dispatch step took it: this cannot fail
	if err != nil {
		return nil, err
	}
	id, err := config.ParseRunID(runID) // the dispatch step's own output: an int64
	if err != nil {
		return nil, fmt.Errorf("the dispatch's runID: %w", err)
	}
	w := d.WaitStep(id)
	o.Wait.apply(&w)
	return w.Map(), nil
}
