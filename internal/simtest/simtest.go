// Package simtest starts the GitHub simulator for a test, with a client pool
// that reaches it under any host name (api.github.com included) and checks
// its TLS certificate for real.
package simtest

import (
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// Start runs a simulator until the test ends and returns it with a pool
// that trusts its CA and dials it whatever the host. opts.Clock, when set,
// is the simulator's time: a test hands the same fake clock to the code
// under test, so that neither waits on the wall clock.
func Start(t testing.TB, opts ghsim.Options) (*ghsim.Server, *ghclient.Pool) {
	t.Helper()
	sim, err := ghsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim, Pool(sim)
}

// Pool is a fresh client pool for sim, its retries on sim's clock.
func Pool(sim *ghsim.Server) *ghclient.Pool {
	return &ghclient.Pool{RootCAs: sim.RootCAs(), DialContext: sim.DialContext, Clock: sim.Clock()}
}
