// Package cli wires the kargo-gha command line: flags, files and
// environment in; JSON, KARGO_OUTPUT lines and exit codes out. The work
// itself is done by the packages under pkg/.
package cli

import (
	"io"
	"os"

	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
)

// Exit codes.
const (
	ExitOK = 0
	// ExitFinal: retrying cannot help (bad configuration, refused
	// credentials, missing workflow, a dispatch whose outcome is unknown).
	ExitFinal = 1
	// ExitTransient: a later retry may succeed (EX_TEMPFAIL).
	ExitTransient = 75
	// ExitInterrupted: stopped by SIGINT or SIGTERM.
	ExitInterrupted = 130
)

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
	// Pool builds GitHub clients (tests point it at the simulator's CA).
	Pool *ghclient.Pool
	// Dispatcher is shared by every dispatch of the process.
	Dispatcher *dispatch.Dispatcher
	Version    string
}

// NewFactory is the factory of the real command.
func NewFactory(version string) *Factory {
	return &Factory{
		IO:         IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
		Getenv:     os.Getenv,
		Pool:       &ghclient.Pool{},
		Dispatcher: dispatch.Default,
		Version:    version,
	}
}
