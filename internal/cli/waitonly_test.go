package cli

import (
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// A wait flag without --wait was ignored and the workflow dispatched
// anyway: --outputs-artifact then printed no outputs and
// --expected-conclusion checked nothing. Each is refused, named, before
// any request.
func TestDispatchRefusesWaitFlagsWithoutWait(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	base := []string{"dispatch", "--repo-url", "https://github.com/myorg/my-app", "--workflow-file", "deploy.yml", "--ref", "main"}
	tests := []struct {
		flag  string
		value string
	}{
		{"--outputs-artifact", "kargo-outputs"},
		{"--expected-conclusion", "success"},
		{"--poll-interval", "5s"},
		{"--wait-timeout", "1h"}, // the default value, typed: still refused
	}
	for _, tt := range tests {
		for _, extra := range [][]string{nil, {"--dry-run"}} {
			t.Run(tt.flag+strings.Join(extra, ""), func(t *testing.T) {
				f.sim.ResetStats()
				args := append(append(append([]string{}, base...), extra...), tt.flag, tt.value)
				if code := f.run(t, args...); code != ExitFinal {
					t.Fatalf("exit %d, want %d: %s", code, ExitFinal, f.stderr.String())
				}
				want := tt.flag + " is a setting of the wait after the dispatch: add --wait"
				if len(extra) > 0 {
					want = tt.flag + " is a setting of the wait after a dispatch, and --dry-run dispatches nothing: leave it out"
				}
				if !strings.Contains(f.stderr.String(), want) {
					t.Fatalf("stderr %q, want %q", f.stderr.String(), want)
				}
				if n := f.sim.Stats().Requests; n != 0 {
					t.Fatalf("%d requests, want none", n)
				}
			})
		}
	}
	// With --wait the same flags are taken (the outputs artifact is asked
	// for only after the run succeeds).
	if code := f.run(t, append(base, "--wait", "--expected-conclusion", "success", "--poll-interval", "5s")...); code != ExitOK {
		t.Fatalf("with --wait: exit %d: %s", code, f.stderr.String())
	}
}
