// Command kargo-gha dispatches GitHub Actions workflows the way Kargo's
// gha-dispatch-workflow promotion step does. See internal/cli.
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ghclient.Version = version
	code := cli.Run(ctx, cli.NewFactory(version), os.Args[1:])
	stop()
	os.Exit(code)
}
