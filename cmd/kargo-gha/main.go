// Command kargo-gha dispatches GitHub Actions workflows and waits for their
// runs the way Kargo's gha-* promotion steps do. See internal/cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/kargo-gha/kargo-gha/internal/cli"
)

// version is set at build time (-ldflags "-X main.version=v0.1.0"); a
// binary built by go install takes its module version instead.
var version = ""

// commit and date name the commit built (-X main.commit=..., -X
// main.date=...), for builds Go cannot stamp itself (-buildvcs=false).
var commit, date = "", ""

func main() {
	// A write to a closed stdout or stderr then fails with EPIPE instead of
	// killing the process silently: a run already dispatched must still be
	// named on stderr (or, that broken too, in the exit code).
	signal.Ignore(syscall.SIGPIPE)
	ctx, cancel := context.WithCancelCause(context.Background())
	stopOnSignal(cancel)
	v := buildVersion()
	f := cli.NewFactory(v)
	f.Commit, f.Date = commit, date
	code := cli.Run(ctx, f, os.Args[1:])
	cancel(nil)
	os.Exit(code)
}

// stopSignals end the command as an interrupt (exit 130). SIGHUP (the
// terminal or session went away) and SIGQUIT (Ctrl-\) count too: dying of
// them after the dispatch left, or with a goroutine dump, would not say
// where to look for the run.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// stopOnSignal cancels ctx, with a cause naming the signal, at the first
// stop signal; the second one acts as by default and kills the process.
func stopOnSignal(cancel context.CancelCauseFunc) {
	var sigs []os.Signal
	for _, s := range stopSignals {
		// Notify would undo an inherited SIG_IGN (nohup, a background job).
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	if len(sigs) == 0 {
		return // Notify with no signals would catch them all
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		s := <-ch
		signal.Stop(ch)
		cancel(fmt.Errorf("%w by %s", cli.ErrInterrupted, signalName(s)))
	}()
}

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return s.String()
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
