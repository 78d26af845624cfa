// Command ghsim runs the GitHub API simulator for local trials of kargo-gha
// by hand: one repository with one workflow, a token and a GitHub App whose
// private key it writes to a file, over HTTPS with a CA it writes to a file;
// optionally faults (5xx, lost answers, secondary rate limits, read lag) and
// a protected environment whose runs wait for a reviewer. On start it prints
// how to use it, with kargo-gha commands ready to paste. See docs/ghsim.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	var usage usageError
	if errors.As(err, &usage) {
		fmt.Fprintln(os.Stderr, "ghsim:", err)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ghsim:", err)
		os.Exit(1)
	}
}

// run starts the simulator, prints how to use it and serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	sim, err := start(cfg, stderr)
	if err != nil {
		return err
	}
	defer sim.Close()
	printUsage(stdout, sim)
	<-ctx.Done()
	return nil
}
