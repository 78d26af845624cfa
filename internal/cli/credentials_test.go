package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

func TestCredentialsFileIsBounded(t *testing.T) {
	big := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := os.WriteFile(big, []byte(strings.Repeat("#", credentials.MaxCredentialsFileBytes+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"/dev/zero", big} {
		_, err := newLookups(nil, credentialFlags{File: file})
		if !errors.Is(err, credentials.ErrTooLarge) || !failure.IsFinal(err) {
			t.Fatalf("%s: err = %v; want a final too-large error", file, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "--credentials-file") || !strings.Contains(msg, file) {
			t.Fatalf("%s: %q names neither the flag nor the file", file, msg)
		}
	}
}

// For an Enterprise Server host (the simulator's), GH_ENTERPRISE_TOKEN
// comes before GH_TOKEN, as in the GitHub CLI; the progress line names the
// variable used.
func TestEnterpriseTokenForEnterpriseHost(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = "ghp_the_github_com_token"
	f.env["GH_ENTERPRISE_TOKEN"] = testToken
	args := []string{"dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main"}
	if code := f.run(t, args...); code != 0 || !strings.Contains(f.stderr.String(), "(credentials: GH_ENTERPRISE_TOKEN)") {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	delete(f.env, "GH_ENTERPRISE_TOKEN")
	f.env["GITHUB_ENTERPRISE_TOKEN"] = testToken
	if code := f.run(t, args...); code != 0 || !strings.Contains(f.stderr.String(), "(credentials: GITHUB_ENTERPRISE_TOKEN)") {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	delete(f.env, "GITHUB_ENTERPRISE_TOKEN")
	delete(f.env, "GH_TOKEN")
	if code := f.run(t, args...); code != ExitFinal || !strings.Contains(f.stderr.String(), "none of GH_ENTERPRISE_TOKEN, GITHUB_ENTERPRISE_TOKEN, GH_TOKEN, GITHUB_TOKEN") {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
}
