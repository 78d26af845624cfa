package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/step"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// defaultWaitTimeout bounds a wait; GitHub's own job limit is 6 hours,
// most deployment runs finish well within one.
const defaultWaitTimeout = time.Hour

// waitFlags are the flags shared by `wait` and `dispatch --wait`.
type waitFlags struct {
	ExpectedConclusion string
	PollInterval       time.Duration
	Timeout            time.Duration
	OutputsArtifact    string
}

func (w *waitFlags) register(cmd *cobra.Command, timeoutFlag string) {
	fl := cmd.Flags()
	fl.StringVar(&w.ExpectedConclusion, "expected-conclusion", "", "fail unless the run ends with this conclusion ("+strings.Join(config.Conclusions, ", ")+")")
	_ = cmd.RegisterFlagCompletionFunc("expected-conclusion", cobra.FixedCompletions(config.Conclusions, cobra.ShellCompDirectiveNoFileComp))
	fl.Var(durationValue{&w.PollInterval}, "poll-interval", fmt.Sprintf("time between status checks: a duration (30s) or seconds (default %s)", wait.DefaultPollInterval))
	w.Timeout = defaultWaitTimeout
	fl.StringVar(&w.OutputsArtifact, "outputs-artifact", "", "after the run succeeds, print the keys of outputs.json in this artifact of the run as \"outputs\"")
	fl.Var(durationValue{&w.Timeout}, timeoutFlag, "give up waiting after this long, a duration (2h) or seconds; the run goes on")
}

// apply sets the fields of a wait step config that the flags give.
func (w *waitFlags) apply(c *config.WaitConfig) {
	if w.ExpectedConclusion != "" {
		c.ExpectedConclusion = &w.ExpectedConclusion
	}
	if w.PollInterval > 0 {
		c.PollInterval = w.PollInterval.String()
	}
	if w.OutputsArtifact != "" {
		c.OutputsArtifact = w.OutputsArtifact
	}
}

// WaitOptions are the inputs of `kargo-gha wait`.
type WaitOptions struct {
	Factory     *Factory
	ConfigFile  string
	ConfigJSON  string
	RepoURL     string
	RunID       string
	Insecure    bool
	AllowHTTP   bool
	Wait        waitFlags
	Credentials credentialFlags
}

// NewCmdWait builds `kargo-gha wait`.
func NewCmdWait(f *Factory, runF func(context.Context, *WaitOptions) error) *cobra.Command {
	opts := &WaitOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait for a GitHub Actions workflow run to finish and check its conclusion",
		Long: `Wait for a workflow run, as the gha-wait-for-workflow promotion step does, and
print {"runID": ..., "conclusion": ..., "htmlURL": ..., "runAttempt": ...} on stdout.

The run is checked every --poll-interval with conditional requests: while it
does not change, GitHub answers 304, which costs no rate limit. A run waiting
for a protected environment shows which one and who may approve it. With
--expected-conclusion, any other conclusion is a failure (exit 1) that names
the failed jobs and steps. GitHub failing meanwhile (5xx, resets, rate limits)
is ridden out for up to 15 minutes. Giving up after --timeout, or on Ctrl-C,
leaves the run going (exit 75, or 130 when interrupted); a run that answered
404 on every check was not found (exit 1).`,
		Example: `  kargo-gha wait --repo-url https://github.com/myorg/my-app --run-id 123456789 \
    --expected-conclusion success --poll-interval 30s

  kargo-gha wait --config-json '{"repoURL":"https://github.com/myorg/my-app","runID":123456789}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			err := runWait(cmd.Context(), opts)
			return opts.inFlagTerms(err)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.ConfigFile, "config", "", "step configuration file, YAML or JSON (\"-\" for stdin)")
	fl.StringVar(&opts.ConfigJSON, "config-json", "", "step configuration as a JSON string")
	fl.StringVar(&opts.RepoURL, "repo-url", "", "repository URL")
	fl.StringVar(&opts.RunID, "run-id", "", "the run to wait for")
	fl.BoolVar(&opts.Insecure, "insecure-skip-tls-verify", false, "skip TLS verification of the GitHub API (test servers only)")
	fl.BoolVar(&opts.AllowHTTP, "allow-http", false, "allow plain-text http:// repository URLs")
	opts.Credentials.register(fl)
	opts.Wait.register(cmd, "timeout")
	return cmd
}

// inFlagTerms tells the configuration's problems in the flags' names.
func (o *WaitOptions) inFlagTerms(err error) error {
	return inFlagTerms(err, waitFlagFields, o.flagConfig().Map(), o.ConfigFile != "" || o.ConfigJSON != "")
}

func (o *WaitOptions) stepConfig() (map[string]any, error) {
	cfg, err := readConfig(o.Factory, o.ConfigFile, o.ConfigJSON)
	if err != nil {
		return nil, err
	}
	return overlay(cfg, o.flagConfig().Map()), nil
}

// flagConfig is the configuration the flags give: the one place flags
// become config fields. A flag not given leaves its field unset.
func (o *WaitOptions) flagConfig() config.WaitConfig {
	c := config.WaitConfig{InsecureSkipTLSVerify: o.Insecure}
	c.RepoURL = o.RepoURL
	if o.RunID != "" {
		c.RunID = o.RunID // a string of digits, as an expression gives it
	}
	o.Wait.apply(&c)
	return c
}

func runWait(ctx context.Context, o *WaitOptions) error {
	f := o.Factory
	cfg, err := o.stepConfig()
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
	res, err := waitForRun(ctx, f, r, cfg, look, o.Wait.Timeout)
	keys := []string{"runID", "conclusion", "htmlURL", "runAttempt", "failedJobs", "failure", "outputs", "headSHA", "headBranch", "links"}
	// A wait stopped (--timeout, a signal) while the run goes on prints what
	// was seen of the run, the run ID first: the step names it only once the
	// run completed.
	if id, idErr := config.ParseRunID(cfg["runID"]); idErr == nil && anyKey(res.Output, keys) {
		out.set("runID", id)
	}
	for _, k := range keys {
		if v, ok := res.Output[k]; ok {
			out.set(k, v)
		}
	}
	if err != nil {
		if len(out.keys) > 0 {
			_ = out.emit()
		}
		return err
	}
	return out.emit()
}

// waitForRun drives the wait step until the run completes or timeout
// passes, showing progress on stderr.
func waitForRun(ctx context.Context, f *Factory, r *step.Runner, cfg map[string]any, look *lookups, timeout time.Duration) (step.Result, error) {
	if timeout <= 0 {
		timeout = defaultWaitTimeout
	}
	p := newStatusPrinter(f)
	sc := &step.Context{
		Alias: "wait", Config: cfg, Credentials: look.git, LegacyCredentials: look.legacy,
		Log: progressLog(p),
	}
	d := driver{clock: r.Clock, idle: wait.DefaultPollInterval, show: p.show,
		deadline: clock.Or(r.Clock).Now().Add(timeout), cause: fmt.Errorf("the wait timeout of %s passed", shortDuration(timeout))}
	res, stop, err := d.drive(ctx, r.Wait, sc)
	p.done()
	if stop != nil {
		err := step.WaitStopped(res, stop)
		if errors.Is(stop, ErrInterrupted) {
			return res, failure.Final(err)
		}
		if failure.IsFinal(err) { // never found: say which run
			return res, fmt.Errorf("run %v: %w", cfg["runID"], err)
		}
		return res, err
	}
	if err == nil {
		progress(f, "%s", res.Message)
	}
	return res, err
}

func anyKey(m map[string]any, keys []string) bool {
	for _, k := range keys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}
