// Package cli wires the kargo-gha command line: flags, files and
// environment in; JSON, KARGO_OUTPUT lines and exit codes out. The steps
// themselves are pkg/step's, the same the Kargo module runs: this package
// supplies credential lookups from --credentials-file and the environment,
// and calls a step again while it is Running.
package cli

import (
	"io"
	"os"
	"time"

	"github.com/kargo-gha/kargo-gha/pkg/step"
)

// Exit codes.
const (
	ExitOK = 0
	// ExitFinal: retrying cannot help (bad configuration, refused
	// credentials, missing workflow, a dispatch whose outcome is unknown).
	ExitFinal = 1
	// ExitUsage (usage.go): the command line is wrong.
	// ExitTransient: nothing was dispatched, and a later retry may succeed
	// (EX_TEMPFAIL).
	ExitTransient = 75
	// ExitInterrupted: stopped by SIGINT or SIGTERM.
	ExitInterrupted = 130
)

// cliCallTimeout bounds one GitHub round trip on the command line, where
// no reconcile worker is held: GitHub answers a dispatch with run details
// once the run exists, which can take seconds.
const cliCallTimeout = 30 * time.Second

// IOStreams are the command's standard streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Factory holds what commands depend on, so tests can replace it.
type Factory struct {
	IO     IOStreams
	Getenv func(string) string
	// Runner runs the steps; its client pool, dispatcher and checker serve
	// every call of the process.
	Runner  *step.Runner
	Version string
	// Commit and Date name the commit built, when the build says (-X).
	Commit, Date string
	// LogFormat is --log-format.
	LogFormat logFormat
}

// NewFactory is the factory of the real command.
func NewFactory(version string) *Factory {
	r := step.NewRunner()
	r.CallTimeout = cliCallTimeout
	r.Clients.Version = version // the User-Agent names the command's version
	return &Factory{
		IO:      IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
		Getenv:  os.Getenv,
		Runner:  r,
		Version: version,
	}
}
