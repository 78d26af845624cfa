package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kargo-gha/kargo-gha/pkg/config"
	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/repourl"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

const (
	// defaultWaitTimeout bounds a wait; GitHub's own job limit is 6 hours,
	// most deployment runs finish well within one.
	defaultWaitTimeout = time.Hour
)

// ErrInterrupted is the cause of a context ended by SIGINT or SIGTERM.
var ErrInterrupted = errors.New("interrupted")

// waitFlags are the flags shared by `wait` and `dispatch --wait`.
type waitFlags struct {
	ExpectedConclusion string
	PollInterval       string
	Timeout            time.Duration
}

func (w *waitFlags) register(cmd *cobra.Command, timeoutFlag string) {
	fl := cmd.Flags()
	fl.StringVar(&w.ExpectedConclusion, "expected-conclusion", "", "fail unless the run ends with this conclusion (success, failure, cancelled, skipped, timed_out, action_required, neutral, stale)")
	fl.StringVar(&w.PollInterval, "poll-interval", "", fmt.Sprintf("Go duration between status checks (default %s)", wait.DefaultPollInterval))
	fl.DurationVar(&w.Timeout, timeoutFlag, defaultWaitTimeout, "give up waiting after this long (the run goes on)")
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
print {"conclusion": ..., "runID": ..., "htmlURL": ...} on stdout.

The run is checked every --poll-interval with conditional requests: while it
does not change, GitHub answers 304, which costs no rate limit. With
--expected-conclusion, any other conclusion is a failure (exit 1). Giving up
after --timeout, or on Ctrl-C, leaves the run going (exit 75, or 130 when
interrupted).`,
		Example: `  kargo-gha wait --repo-url https://github.com/myorg/my-app --run-id 123456789 \
    --expected-conclusion success --poll-interval 30s

  kargo-gha wait --config-json '{"repoURL":"https://github.com/myorg/my-app","runID":123456789}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runWait(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.ConfigFile, "config", "", "step configuration file, YAML or JSON (\"-\" for stdin)")
	fl.StringVar(&opts.ConfigJSON, "config-json", "", "step configuration as a JSON string")
	fl.StringVar(&opts.RepoURL, "repo-url", "", "repository URL")
	fl.StringVar(&opts.RunID, "run-id", "", "the run to wait for")
	fl.BoolVar(&opts.Insecure, "insecure-skip-tls-verify", false, "skip TLS verification of the GitHub API (test servers only)")
	fl.BoolVar(&opts.AllowHTTP, "allow-http", false, "allow plain-text http:// repository URLs")
	fl.StringVar(&opts.Credentials.File, "credentials-file", "", "Kubernetes Secret manifests in Kargo's Git-credential format")
	fl.StringVar(&opts.Credentials.Project, "project", "", "Kargo project (namespace) whose Secrets in --credentials-file come first")
	opts.Wait.register(cmd, "timeout")
	return cmd
}

func (o *WaitOptions) stepConfig() (map[string]any, error) {
	cfg, err := readConfig(o.Factory, o.ConfigFile, o.ConfigJSON)
	if err != nil {
		return nil, err
	}
	set := func(k, v string) {
		if v != "" {
			cfg[k] = v
		}
	}
	set("repoURL", o.RepoURL)
	set("runID", o.RunID)
	set("expectedConclusion", o.Wait.ExpectedConclusion)
	set("pollInterval", o.Wait.PollInterval)
	if o.Insecure {
		cfg["insecureSkipTLSVerify"] = true
	}
	return cfg, nil
}

func runWait(ctx context.Context, o *WaitOptions) error {
	f := o.Factory
	raw, err := o.stepConfig()
	if err != nil {
		return err
	}
	urlOpts := repourl.Options{AllowHTTP: o.AllowHTTP}
	cfg, err := config.ParseWait(raw, urlOpts)
	if err != nil {
		return failure.Final(err)
	}
	client, _, err := stepClient(f, o.Credentials, cfg.RepoURL, cfg.Legacy, cfg.InsecureSkipTLSVerify, urlOpts, cfg.CurrentFormat)
	if err != nil {
		return err
	}
	out := &output{}
	st, err := waitForRun(ctx, f, client, cfg.RunID, cfg.ExpectedConclusion, cfg.PollInterval, o.Wait.Timeout)
	if st != nil && st.Outcome != wait.Running {
		out.set("conclusion", st.Conclusion)
		out.set("runID", st.RunID)
		out.set("htmlURL", st.HTMLURL)
	}
	if err != nil {
		return err
	}
	return emit(f, out)
}

// waitForRun waits, bounded by timeout, showing progress on stderr.
func waitForRun(ctx context.Context, f *Factory, client *ghclient.Client, runID int64, expected string, poll, timeout time.Duration) (*wait.Status, error) {
	if poll <= 0 {
		poll = wait.DefaultPollInterval
	}
	if timeout <= 0 {
		timeout = defaultWaitTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("the wait timeout of %s passed", timeout))
	defer cancel()
	p := newStatusPrinter(f.IO.ErrOut, runID)
	defer p.done()
	return wait.Default.Wait(ctx, client, runID, wait.Options{Expected: expected, PollInterval: poll, OnStatus: p.show})
}

// statusPrinter shows a person how the wait goes: the run's web URL once,
// then each change of status with the time waited; on a terminal as one
// line that updates, otherwise as plain lines a log keeps.
type statusPrinter struct {
	w        io.Writer
	tty      bool
	runID    int64
	start    time.Time
	last     string
	urlShown bool
	open     bool
}

func newStatusPrinter(w io.Writer, runID int64) *statusPrinter {
	return &statusPrinter{w: w, tty: isTerminal(w), runID: runID, start: time.Now()}
}

func (p *statusPrinter) show(st *wait.Status) {
	if !p.urlShown {
		fmt.Fprintf(p.w, "waiting for run %d: %s\n", st.RunID, st.HTMLURL)
		p.urlShown = true
	}
	state := st.Status
	if st.Conclusion != "" {
		state += " (" + st.Conclusion + ")"
	}
	elapsed := time.Since(p.start).Round(time.Second)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K[%s] run %d: %s", elapsed, st.RunID, state)
		p.open = true
		return
	}
	if state != p.last {
		fmt.Fprintf(p.w, "[%s] run %d: %s\n", elapsed, st.RunID, state)
	}
	p.last = state
}

func (p *statusPrinter) done() {
	if p.open {
		fmt.Fprintln(p.w)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
