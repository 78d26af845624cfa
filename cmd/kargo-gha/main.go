// Command kargo-gha dispatches GitHub Actions workflows and waits for their
// runs the way Kargo's gha-* promotion steps do. See internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/kargo-gha/kargo-gha/internal/cli"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
)

// version is set at build time (-ldflags "-X main.version=v0.1.0"); a
// binary built by go install takes its module version instead.
var version = ""

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		cancel(cli.ErrInterrupted) // a second signal kills the process as usual
		signal.Stop(sig)
	}()
	v := buildVersion()
	ghclient.SetVersion(v)
	code := cli.Run(ctx, cli.NewFactory(v), os.Args[1:])
	cancel(nil)
	os.Exit(code)
}

// buildVersion is the -X version, else the module version go install
// recorded, else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
