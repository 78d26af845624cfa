package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// usageError is a bad flag: exit 2, as flag parsing errors are.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// config is ghsim's flags, checked.
type config struct {
	Addr, CAFile, URLFile string
	Answer                ghsim.DispatchAnswer
	AnswerName            string
	// APIVersions are the REST API versions the host serves (nil: both).
	APIVersions       []string
	Owner, Name       string
	Workflow          ghsim.Workflow
	Token             string
	RunDelay          time.Duration
	QueuedFor, RunFor time.Duration

	// The GitHub App, its private key written to AppKeyFile; no App when
	// AppKeyFile is empty (-no-app).
	AppKeyFile     string
	AppID          int64
	InstallationID int64

	Faults faults
	// ReadLag: a run named in a dispatch answer is not readable this long.
	ReadLag time.Duration
	// Quiet: no request log on stderr.
	Quiet bool
}

// faults are the by-hand fault flags, each a share of requests from 0 to 1.
type faults struct {
	ServerError        float64       // 502 before acting, any request
	LostAnswer         float64       // a dispatch acted on, then the connection dropped
	SecondaryRateLimit float64       // 403 secondary rate limit, any request
	RetryAfter         time.Duration // its Retry-After
}

// environmentName is what GitHub accepts as an environment name.
var environmentName = regexp.MustCompile(`^[A-Za-z0-9._ -]{1,255}$`)

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("ghsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8443", "address to listen on")
	fs.StringVar(&c.CAFile, "ca-file", "ghsim-ca.pem", "where to write the CA certificate clients must trust")
	fs.StringVar(&c.URLFile, "url-file", "", "where to write the simulator's URL once it serves (useful with -addr 127.0.0.1:0)")
	runName := fs.String("run-name", "", "the workflow's run-name, e.g. 'Deploy ${{ inputs.dispatch_key }}' (for correlationInput)")
	fs.StringVar(&c.AnswerName, "answer", "run-details", "how dispatches are answered: run-details, no-content or ghes-3.20")
	versions := fs.String("api-versions", "", "comma-separated REST API versions the host serves, "+ghsim.APIVersion2022+" and/or "+ghsim.APIVersion2026+" (default both; another is refused with 400)")
	repo := fs.String("repo", "example/app", "repository OWNER/NAME to create")
	workflow := fs.String("workflow", "deploy.yml", "workflow file to create")
	inputs := fs.String("inputs", "environment,image_tag,promotion_id,deploy_version", "comma-separated workflow_dispatch inputs the workflow declares")
	fs.StringVar(&c.Token, "token", "ghp_simulated_demo_token", "personal access token to accept (user octocat)")
	fs.DurationVar(&c.RunDelay, "run-delay", 2*time.Second, "how long after a dispatch its run appears")
	fs.DurationVar(&c.QueuedFor, "queued-for", 3*time.Second, "how long runs stay queued")
	fs.DurationVar(&c.RunFor, "run-for", 10*time.Second, "how long runs stay in progress")
	conclusion := fs.String("conclusion", "success", "conclusion runs end with")

	fs.StringVar(&c.AppKeyFile, "app-key-file", "", "where to write the GitHub App's private key (PEM, mode 0600; default: ghsim-app-key.pem beside -ca-file)")
	noApp := fs.Bool("no-app", false, "create no GitHub App (and write no key)")
	fs.Int64Var(&c.AppID, "app-id", 1001, "the GitHub App's ID")
	fs.Int64Var(&c.InstallationID, "installation-id", 2002, "the ID of the App's installation on -repo")

	fs.Float64Var(&c.Faults.ServerError, "fault-5xx-rate", 0, "share of requests (0 to 1) answered 502 Bad Gateway without acting")
	fs.Float64Var(&c.Faults.LostAnswer, "lost-answer-rate", 0, "share of dispatches (0 to 1) acted on (the run is created) whose answer is lost: the connection drops")
	fs.Float64Var(&c.Faults.SecondaryRateLimit, "secondary-rate-limit-rate", 0, "share of requests (0 to 1) answered 403 with GitHub's secondary rate limit")
	fs.DurationVar(&c.Faults.RetryAfter, "secondary-retry-after", time.Minute, "the Retry-After of those secondary rate limits")
	fs.DurationVar(&c.ReadLag, "read-lag", 0, "how long a run named in a dispatch answer still answers 404 to reads (GitHub's replicas lagging)")
	envName := fs.String("environment", "", "a protected environment: every run waits in 'waiting' until a reviewer approves or rejects it (see the printed curl command)")
	reviewers := fs.String("reviewers", "octocat", "comma-separated reviewers of -environment")
	fs.BoolVar(&c.Quiet, "quiet", false, "do not log requests on stderr")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, usagef("unexpected arguments %q", fs.Args())
	}

	modes := map[string]ghsim.DispatchAnswer{"run-details": ghsim.AnswerRunDetails, "no-content": ghsim.AnswerNoContent, "ghes-3.20": ghsim.AnswerGHES320}
	var ok bool
	if c.Answer, ok = modes[c.AnswerName]; !ok {
		return config{}, usagef("-answer %q: must be run-details, no-content or ghes-3.20", c.AnswerName)
	}
	for _, v := range splitList(*versions) {
		if v != ghsim.APIVersion2022 && v != ghsim.APIVersion2026 {
			return config{}, usagef("-api-versions %q: each must be %s or %s", *versions, ghsim.APIVersion2022, ghsim.APIVersion2026)
		}
		c.APIVersions = append(c.APIVersions, v)
	}
	if c.Owner, c.Name, ok = strings.Cut(*repo, "/"); !ok || c.Owner == "" || c.Name == "" || strings.Contains(c.Name, "/") {
		return config{}, usagef("-repo %q: must be OWNER/NAME", *repo)
	}
	if err := c.checkTimesAndFaults(); err != nil {
		return config{}, err
	}
	switch {
	case *noApp:
		c.AppKeyFile = ""
	case c.AppKeyFile == "":
		c.AppKeyFile = filepath.Join(filepath.Dir(c.CAFile), "ghsim-app-key.pem")
	}
	if c.AppKeyFile != "" && (c.AppID <= 0 || c.InstallationID <= 0) {
		return config{}, usagef("-app-id and -installation-id must be positive")
	}
	if c.Token == "" {
		return config{}, usagef("-token must not be empty")
	}

	c.Workflow = ghsim.Workflow{File: *workflow, Inputs: splitList(*inputs), Conclusion: *conclusion, RunName: *runName}
	if *envName != "" {
		if !environmentName.MatchString(*envName) {
			return config{}, usagef("-environment %q: letters, digits, '.', '_', '-' and spaces only", *envName)
		}
		c.Workflow.Environment = &ghsim.Environment{Name: *envName, Reviewers: splitList(*reviewers), Manual: true}
	}
	return c, nil
}

// checkTimesAndFaults refuses fault shares outside 0..1 and negative
// durations, naming the flag.
func (c *config) checkTimesAndFaults() error {
	for name, rate := range map[string]float64{"-fault-5xx-rate": c.Faults.ServerError, "-lost-answer-rate": c.Faults.LostAnswer, "-secondary-rate-limit-rate": c.Faults.SecondaryRateLimit} {
		if !(rate >= 0 && rate <= 1) {
			return usagef("%s %v: must be a share from 0 to 1 (0.1 is one request in ten)", name, rate)
		}
	}
	for name, d := range map[string]time.Duration{"-run-delay": c.RunDelay, "-queued-for": c.QueuedFor, "-run-for": c.RunFor, "-read-lag": c.ReadLag} {
		if d < 0 {
			return usagef("%s %v: must not be negative", name, d)
		}
	}
	if c.Faults.SecondaryRateLimit > 0 && c.Faults.RetryAfter < time.Second {
		return usagef("-secondary-retry-after %v: must be at least 1s", c.Faults.RetryAfter)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// injected turns the fault flags into the simulator's faults. The
// secondary rate limit comes first: GitHub refuses such a request before
// anything else happens to it.
func (f faults) injected() []*ghsim.Fault {
	var out []*ghsim.Fault
	if f.SecondaryRateLimit > 0 {
		out = append(out, &ghsim.Fault{SecondaryRateLimit: f.RetryAfter, Probability: f.SecondaryRateLimit})
	}
	if f.ServerError > 0 {
		out = append(out, &ghsim.Fault{Status: 502, Probability: f.ServerError})
	}
	if f.LostAnswer > 0 {
		out = append(out, &ghsim.Fault{Route: "dispatch", AfterAction: true, Drop: true, Probability: f.LostAnswer})
	}
	return out
}
