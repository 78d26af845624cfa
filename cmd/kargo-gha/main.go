// Command kargo-gha dispatches GitHub Actions workflows and waits for their
// runs the way Kargo's gha-* promotion steps do. See internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kargo-gha/kargo-gha/internal/cli"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		cancel(cli.ErrInterrupted) // a second signal kills the process as usual
		signal.Stop(sig)
	}()
	ghclient.Version = version
	code := cli.Run(ctx, cli.NewFactory(version), os.Args[1:])
	cancel(nil)
	os.Exit(code)
}
