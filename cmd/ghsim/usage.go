package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// printUsage prints what the simulator serves and kargo-gha commands to
// paste: a dispatch with the token, one as the GitHub App, a wait, and,
// with a protected environment, how to approve or reject a waiting run.
func printUsage(w io.Writer, sim *simulator) {
	cfg := sim.cfg
	repoURL := sim.RepoURL(cfg.Owner, cfg.Name)
	fmt.Fprintf(w, "GitHub simulator on %s (dispatch answers: %s); Ctrl-C stops it\n", sim.URL, cfg.AnswerName)
	fmt.Fprintf(w, "  repository   %s, workflow %s (inputs: %s)\n", repoURL, cfg.Workflow.File, strings.Join(cfg.Workflow.Inputs, ", "))
	fmt.Fprintf(w, "  CA           %s\n", sim.CAFile)
	fmt.Fprintf(w, "  token        %s (user octocat)\n", cfg.Token)
	if sim.AppKeyFile != "" {
		fmt.Fprintf(w, "  GitHub App   ID %d, installation %d on %s/%s, private key %s (client ID %s)\n",
			cfg.AppID, cfg.InstallationID, cfg.Owner, cfg.Name, sim.AppKeyFile, appClientID(cfg.AppID))
	}
	fmt.Fprintf(w, "  faults       %s\n", describeFaults(cfg))
	if env := cfg.Workflow.Environment; env != nil {
		fmt.Fprintf(w, "  environment  %s (ID %d): every run waits for a reviewer (%s)\n", env.Name, ghsim.EnvironmentID(sim.workflow), strings.Join(env.Reviewers, ", "))
	}

	target := fmt.Sprintf("--repo-url %s --workflow-file %s --ref main", repoURL, shellQuote(cfg.Workflow.File))
	if slices.Contains(cfg.Workflow.Inputs, "environment") {
		target += " --input environment=prod"
	}
	ca := "SSL_CERT_FILE=" + shellQuote(sim.CAFile)
	fmt.Fprintf(w, "\nDispatch with the token:\n  %s GH_TOKEN=%s kargo-gha dispatch %s\n", ca, shellQuote(cfg.Token), target)
	if sim.AppKeyFile != "" {
		// env -u: a token in the user's shell would win over the App.
		fmt.Fprintf(w, "Dispatch as the GitHub App (kargo-gha signs a JWT with the key and exchanges it for an installation token):\n  %s\n",
			appCommand(sim, "dispatch "+target))
	}
	fmt.Fprintf(w, "Wait for the run (RUN_ID from the dispatch's {\"runID\": …}):\n  %s GH_TOKEN=%s kargo-gha wait --repo-url %s --run-id RUN_ID --poll-interval 2s\n",
		ca, shellQuote(cfg.Token), repoURL)
	if env := cfg.Workflow.Environment; env != nil {
		endpoint := fmt.Sprintf("%s/api/v3/repos/%s/%s/actions/runs/RUN_ID/pending_deployments", sim.URL, cfg.Owner, cfg.Name)
		for _, state := range []string{"approved", "rejected"} {
			body := fmt.Sprintf(`{"environment_ids":[%d],"state":"%s","comment":"by hand"}`, ghsim.EnvironmentID(sim.workflow), state)
			verb := map[string]string{"approved": "Approve", "rejected": "Reject"}[state]
			fmt.Fprintf(w, "%s a waiting run (%s):\n  curl --cacert %s -H 'Authorization: Bearer %s' -X POST %s -d '%s'\n",
				verb, env.Name, shellQuote(sim.CAFile), cfg.Token, endpoint, body)
		}
	}
	if !cfg.Quiet {
		fmt.Fprintln(w, "\nEach request is logged on stderr (-quiet: not).")
	}
}

// appCommand is a kargo-gha command line that authenticates as the App.
func appCommand(sim *simulator, args string) string {
	return fmt.Sprintf("env -u GH_TOKEN -u GITHUB_TOKEN SSL_CERT_FILE=%s GITHUB_APP_ID=%d GITHUB_APP_INSTALLATION_ID=%d GITHUB_APP_PRIVATE_KEY_FILE=%s kargo-gha %s",
		shellQuote(sim.CAFile), sim.cfg.AppID, sim.cfg.InstallationID, shellQuote(sim.AppKeyFile), args)
}

func describeFaults(cfg config) string {
	var out []string
	f := cfg.Faults
	if f.ServerError > 0 {
		out = append(out, fmt.Sprintf("%g%% of requests answered 502", f.ServerError*100))
	}
	if f.LostAnswer > 0 {
		out = append(out, fmt.Sprintf("%g%% of dispatches acted on, answer lost", f.LostAnswer*100))
	}
	if f.SecondaryRateLimit > 0 {
		out = append(out, fmt.Sprintf("%g%% of requests secondary-rate-limited (Retry-After %s)", f.SecondaryRateLimit*100, f.RetryAfter))
	}
	if cfg.ReadLag > 0 {
		out = append(out, fmt.Sprintf("runs unreadable for %s after the dispatch answer names them", cfg.ReadLag))
	}
	if len(out) == 0 {
		return "none (see -fault-5xx-rate, -lost-answer-rate, -secondary-rate-limit-rate, -read-lag)"
	}
	return strings.Join(out, "; ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
