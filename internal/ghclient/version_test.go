package ghclient_test

import (
	"context"
	"sync"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
)

// Reads speak 2026-03-10 where the host serves it and 2022-11-28 where it
// does not, a host's refusal paid once per pool.
func TestReadsSpeakTheNewestVersionTheHostServes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		served   []string
		versions []string // the versions of the GETs of two reads
		learned  bool     // Serves2026 afterwards
	}{
		{"both", []string{ghsim.APIVersion2022, ghsim.APIVersion2026}, []string{"2026-03-10", "2026-03-10"}, true},
		{"only 2026-03-10", []string{ghsim.APIVersion2026}, []string{"2026-03-10", "2026-03-10"}, true},
		{"only 2022-11-28", []string{ghsim.APIVersion2022}, []string{"2026-03-10", "2022-11-28", "2022-11-28"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var got []string
			sim, pool := simtest.Start(t, ghsim.Options{APIVersions: tc.served, Observe: func(e ghsim.Exchange) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, e.Header.Get("X-GitHub-Api-Version"))
			}})
			repo := sim.AddRepo("o", "r")
			sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml"})
			sim.AddToken("ghp_versions", "octocat", false)
			u, err := repourl.Parse(sim.RepoURL("o", "r"), repourl.Options{})
			if err != nil {
				t.Fatal(err)
			}
			c, err := pool.Client(u, credentials.Credentials{Token: "ghp_versions", Source: "test"}, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, known := c.Serves2026(); known {
				t.Fatal("a host nobody asked is known")
			}
			for range 2 {
				if _, _, err := c.Actions.ListWorkflowRunsByFileName(context.Background(), "o", "r", "deploy.yml", nil); err != nil {
					t.Fatal(err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != len(tc.versions) {
				t.Fatalf("GETs asked for %v, want %v", got, tc.versions)
			}
			for i := range got {
				if got[i] != tc.versions[i] {
					t.Fatalf("GETs asked for %v, want %v", got, tc.versions)
				}
			}
			if serves, known := c.Serves2026(); !known || serves != tc.learned {
				t.Fatalf("Serves2026 = %t, %t; want %t, true", serves, known, tc.learned)
			}
		})
	}
}
