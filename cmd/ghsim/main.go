// Command ghsim runs the GitHub API simulator for local trials of kargo-gha:
// one repository with one workflow and one token, over HTTPS with a CA it
// writes to a file.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "address to listen on")
	caFile := flag.String("ca-file", "ghsim-ca.pem", "where to write the CA certificate clients must trust")
	urlFile := flag.String("url-file", "", "where to write the simulator's URL once it serves (useful with -addr 127.0.0.1:0)")
	runName := flag.String("run-name", "", "the workflow's run-name, e.g. 'Deploy ${{ inputs.dispatch_key }}' (for correlationInput)")
	answer := flag.String("answer", "run-details", "how dispatches are answered: run-details, no-content or ghes-3.20")
	repo := flag.String("repo", "example/app", "repository OWNER/NAME to create")
	workflow := flag.String("workflow", "deploy.yml", "workflow file to create")
	inputs := flag.String("inputs", "environment,image_tag,promotion_id,deploy_version", "comma-separated workflow_dispatch inputs the workflow declares")
	token := flag.String("token", "ghp_simulated_demo_token", "personal access token to accept")
	delay := flag.Duration("run-delay", 2*time.Second, "how long after a dispatch its run appears")
	queued := flag.Duration("queued-for", 3*time.Second, "how long runs stay queued")
	running := flag.Duration("run-for", 10*time.Second, "how long runs stay in progress")
	conclusion := flag.String("conclusion", "success", "conclusion runs end with")
	flag.Parse()

	modes := map[string]ghsim.DispatchAnswer{"run-details": ghsim.AnswerRunDetails, "no-content": ghsim.AnswerNoContent, "ghes-3.20": ghsim.AnswerGHES320}
	mode, ok := modes[*answer]
	owner, name, okRepo := strings.Cut(*repo, "/")
	if !ok || !okRepo {
		fmt.Fprintln(os.Stderr, "ghsim: -answer must be run-details, no-content or ghes-3.20, and -repo OWNER/NAME")
		os.Exit(2)
	}
	sim, err := ghsim.New(ghsim.Options{Addr: *addr, Answer: mode, RunDelay: *delay, QueuedFor: *queued, RunFor: *running})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ghsim:", err)
		os.Exit(1)
	}
	defer sim.Close()
	r := sim.AddRepo(owner, name)
	var declared []string
	for _, in := range strings.Split(*inputs, ",") {
		if in = strings.TrimSpace(in); in != "" {
			declared = append(declared, in)
		}
	}
	sim.AddWorkflow(r, ghsim.Workflow{File: *workflow, Inputs: declared, Conclusion: *conclusion, RunName: *runName})
	sim.AddToken(*token, "octocat", false)
	// The files last: whoever waits for them finds the simulator ready.
	if err := os.WriteFile(*caFile, sim.CACertPEM, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "ghsim:", err)
		os.Exit(1)
	}
	if *urlFile != "" {
		if err := os.WriteFile(*urlFile, []byte(sim.URL+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "ghsim:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("GitHub simulator on %s (answers: %s)\n", sim.URL, *answer)
	fmt.Printf("repository:  %s\n", sim.RepoURL(owner, name))
	fmt.Printf("try:         SSL_CERT_FILE=%s GITHUB_TOKEN=%s kargo-gha dispatch --repo-url %s --workflow-file %s --ref main\n",
		*caFile, *token, sim.RepoURL(owner, name), *workflow)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}
