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

// Reads speak 2022-11-28 until the host is known to serve 2026-03-10 (a
// dispatch taught it), and 2026-03-10 on a host that refuses 2022-11-28,
// that refusal paid once per pool.
func TestReadsSpeakAVersionTheHostServes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		served   []string
		taught   *bool    // what a dispatch taught before the reads
		versions []string // the versions of the GETs of two reads
		learned  *bool    // Serves2026 afterwards, nil for not known
	}{
		{"both, nothing known", []string{ghsim.APIVersion2022, ghsim.APIVersion2026}, nil, []string{"2022-11-28", "2022-11-28"}, nil},
		{"both, a dispatch took 2026-03-10", []string{ghsim.APIVersion2022, ghsim.APIVersion2026}, ptr(true), []string{"2026-03-10", "2026-03-10"}, ptr(true)},
		{"only 2026-03-10", []string{ghsim.APIVersion2026}, nil, []string{"2022-11-28", "2026-03-10", "2026-03-10"}, ptr(true)},
		{"only 2022-11-28, a dispatch was refused 2026-03-10", []string{ghsim.APIVersion2022}, ptr(false), []string{"2022-11-28", "2022-11-28"}, ptr(false)},
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
			if tc.taught != nil {
				c.LearnServes2026(*tc.taught)
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
			serves, known := c.Serves2026()
			if known != (tc.learned != nil) || (known && serves != *tc.learned) {
				t.Fatalf("Serves2026 = %t, %t; want %v", serves, known, tc.learned)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
