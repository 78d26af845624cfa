package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/kargo-gha/kargo-gha/pkg/config"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/repourl"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// DispatchOptions are the inputs of `kargo-gha dispatch`.
type DispatchOptions struct {
	Factory *Factory

	ConfigFile string
	ConfigJSON string
	// Overrides, applied over the configuration when set.
	RepoURL      string
	WorkflowFile string
	Ref          string
	Inputs       []string
	Timeout      int
	Insecure     bool
	AllowHTTP    bool
	Credentials  credentialFlags
	// AndWait makes dispatch wait for the run (--wait).
	AndWait bool
	Wait    waitFlags

	// set reports whether a flag was given on the command line.
	set func(name string) bool
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
named by credentials.secretName); GITHUB_TOKEN or GH_TOKEN; GITHUB_APP_CLIENT_ID
or GITHUB_APP_ID with GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY or
GITHUB_APP_PRIVATE_KEY_FILE.

When GitHub does not name the run in its answer, the run is found by listing
the workflow's runs for up to the configured timeout.`,
		Example: `  # From flags, with a token in the environment
  GITHUB_TOKEN=... kargo-gha dispatch --repo-url https://github.com/myorg/my-app \
    --workflow-file deploy.yml --ref main --input environment=prod --input image_tag=1.10

  # From a step's config block, credentials from Kargo Secret manifests
  kargo-gha dispatch --config step.yaml --credentials-file secrets.yaml

  # Dispatch, then wait for the run to succeed
  kargo-gha dispatch --config step.yaml --wait --expected-conclusion success

  # In a Kargo custom step: config passed through, runID read from $KARGO_OUTPUT
  kargo-gha dispatch --config-json '${{ toJson(config) }}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.set = func(name string) bool { return cmd.Flags().Changed(name) }
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDispatch(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.ConfigFile, "config", "", "step configuration file, YAML or JSON (\"-\" for stdin)")
	fl.StringVar(&opts.ConfigJSON, "config-json", "", "step configuration as a JSON string")
	fl.StringVar(&opts.RepoURL, "repo-url", "", "repository URL (https://github.com/OWNER/REPO or a GitHub Enterprise Server URL)")
	fl.StringVar(&opts.WorkflowFile, "workflow-file", "", "workflow file name in .github/workflows (deploy.yml)")
	fl.StringVar(&opts.Ref, "ref", "", "branch or tag to run the workflow on")
	fl.StringArrayVar(&opts.Inputs, "input", nil, "workflow input as key=value (repeatable; the value is sent as a string)")
	fl.IntVar(&opts.Timeout, "timeout", 0, "seconds to wait for the run to appear when GitHub does not name it (default 60, max 300)")
	fl.BoolVar(&opts.Insecure, "insecure-skip-tls-verify", false, "skip TLS verification of the GitHub API (test servers only)")
	fl.BoolVar(&opts.AllowHTTP, "allow-http", false, "allow plain-text http:// repository URLs (the token crosses the network unencrypted)")
	fl.StringVar(&opts.Credentials.File, "credentials-file", "", "Kubernetes Secret manifests in Kargo's Git-credential format")
	fl.StringVar(&opts.Credentials.Project, "project", "", "Kargo project (namespace) whose Secrets in --credentials-file come first")
	fl.BoolVar(&opts.AndWait, "wait", false, "then wait for the run to finish, as gha-wait-for-workflow does, and add its conclusion to the output")
	opts.Wait.register(cmd, "wait-timeout")
	return cmd
}

// stepConfig merges the configuration file and the flags into the step's
// config map.
func (o *DispatchOptions) stepConfig() (map[string]any, error) {
	cfg, err := readConfig(o.Factory, o.ConfigFile, o.ConfigJSON)
	if err != nil {
		return nil, err
	}
	if o.RepoURL != "" {
		cfg["repoURL"] = o.RepoURL
	}
	if o.WorkflowFile != "" {
		cfg["workflowFile"] = o.WorkflowFile
	}
	if o.Ref != "" {
		cfg["ref"] = o.Ref
	}
	if o.set != nil && o.set("timeout") {
		cfg["timeout"] = o.Timeout
	}
	if o.Insecure {
		cfg["insecureSkipTLSVerify"] = true
	}
	if len(o.Inputs) > 0 {
		inputs, _ := cfg["inputs"].(map[string]any)
		if inputs == nil {
			inputs = map[string]any{}
		}
		for _, kv := range o.Inputs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, failure.Final(fmt.Errorf("--input %q must be key=value", kv))
			}
			inputs[k] = v
		}
		cfg["inputs"] = inputs
	}
	return cfg, nil
}

func runDispatch(ctx context.Context, o *DispatchOptions) error {
	f := o.Factory
	raw, err := o.stepConfig()
	if err != nil {
		return err
	}
	urlOpts := repourl.Options{AllowHTTP: o.AllowHTTP}
	cfg, err := config.ParseDispatch(raw, urlOpts)
	if err != nil {
		return failure.Final(err)
	}
	client, creds, err := stepClient(f, o.Credentials, cfg.RepoURL, cfg.Legacy, cfg.InsecureSkipTLSVerify, urlOpts, cfg.CurrentFormat)
	if err != nil {
		return err
	}
	progress(f, "dispatching %s on %s in %s (credentials: %s)", cfg.WorkflowFile, cfg.Ref, client.Repo.WebURL(), creds.Source)
	d := f.Dispatcher
	if d.Logf == nil {
		d.Logf = func(format string, args ...any) { progress(f, format, args...) }
	}
	res, err := d.Dispatch(ctx, client, dispatch.Request{
		WorkflowFile: cfg.WorkflowFile, Ref: cfg.Ref, Inputs: cfg.Inputs, Timeout: cfg.Timeout,
	})
	if err != nil {
		return err
	}
	progress(f, "run %d: %s", res.RunID, res.HTMLURL)
	out := &output{}
	out.set("runID", res.RunID)
	if res.RunURL != "" {
		out.set("runURL", res.RunURL)
	}
	if res.HTMLURL != "" {
		out.set("htmlURL", res.HTMLURL)
	}
	if !o.AndWait {
		return emit(f, out)
	}
	return o.waitAfterDispatch(ctx, client, res.RunID, out)
}

// waitAfterDispatch waits for the dispatched run. Whatever happens, the run
// ID is printed and every failure is final: the dispatch happened, and a
// retry of the whole command would start a second run.
func (o *DispatchOptions) waitAfterDispatch(ctx context.Context, client *ghclient.Client, runID int64, out *output) error {
	f := o.Factory
	var poll time.Duration
	if o.Wait.PollInterval != "" {
		var err error
		if poll, err = time.ParseDuration(o.Wait.PollInterval); err != nil || poll < config.MinPollInterval {
			_ = emit(f, out)
			return failure.Final(fmt.Errorf("--poll-interval %q must be a Go duration of at least %s", o.Wait.PollInterval, config.MinPollInterval))
		}
	}
	st, err := waitForRun(ctx, f, client, runID, o.Wait.ExpectedConclusion, poll, o.Wait.Timeout)
	if st != nil && st.Outcome != wait.Running {
		out.set("conclusion", st.Conclusion)
	}
	if emitErr := emit(f, out); err == nil {
		return emitErr
	}
	if failure.IsFinal(err) {
		return err
	}
	return failure.Final(fmt.Errorf("%w; run %d was dispatched: wait for it with kargo-gha wait, do not dispatch again", err, runID))
}

func warnLegacy(f *Factory, current map[string]any) {
	b, _ := yaml.Marshal(current)
	fmt.Fprintf(f.IO.ErrOut, "warning: this configuration uses the v1.8 format (owner, repo, credentials), removed in Kargo v1.9. "+
		"The equivalent current configuration is below; its credentials come from a Kargo Git-credential Secret for repoURL:\n%s",
		indent(string(b), "  "))
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix) + "\n"
}

func progress(f *Factory, format string, args ...any) {
	fmt.Fprintf(f.IO.ErrOut, format+"\n", args...)
}
