package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	secretGHTeamA = "apiVersion: v1\nkind: Secret\nmetadata: {name: gh, namespace: team-a}\nstringData: {accessToken: token-of-team-a}\n"
	secretGHTeamB = "apiVersion: v1\nkind: Secret\nmetadata: {name: gh, namespace: team-b}\nstringData: {accessToken: token-of-team-b, baseURL: \"https://ghe.b.example/api/v3\"}\n"
)

func stageIn(ns string) string {
	return "apiVersion: kargo.akuity.io/v1alpha1\nkind: Stage\nmetadata:\n  name: deploy\n  namespace: " + ns +
		"\nspec:\n  promotionTemplate:\n    spec:\n      steps:\n      - uses: gha-dispatch-workflow\n        config:\n          owner: o\n          repo: r\n          credentials:\n            secretName: gh\n          workflowFile: deploy.yml\n          ref: main\n"
}

// TestMigrateMatchesSecretsByNamespace is issue 20's scenario through the
// command: Secrets gh in team-a (github.com) and team-b (an Enterprise
// Server), one Stage each in team-a, team-b and team-c, the Secrets in
// both orders. team-a's Stage gets github.com and team-b's the Enterprise
// Server; team-c's is left unchanged and named; each emitted Git-credential
// Secret is in its own namespace, for its own repoURL.
func TestMigrateMatchesSecretsByNamespace(t *testing.T) {
	for order, secrets := range map[string]string{"team-a first": secretGHTeamA + "---\n" + secretGHTeamB, "team-b first": secretGHTeamB + "---\n" + secretGHTeamA} {
		t.Run(order, func(t *testing.T) {
			dir := t.TempDir()
			secretsFile := filepath.Join(dir, "secrets.yaml")
			_ = os.WriteFile(secretsFile, []byte(secrets), 0o600)
			manifest := filepath.Join(dir, "stages.yaml")
			_ = os.WriteFile(manifest, []byte(stageIn("team-a")+"---\n"+stageIn("team-b")+"---\n"+stageIn("team-c")), 0o644)

			code, out, errOut := runMigrateCmd("--credentials-file", secretsFile, "--write", "--emit-credentials", manifest)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			written, _ := os.ReadFile(manifest)
			docs := strings.Split(string(written), "---\n")
			if len(docs) != 3 || !strings.Contains(docs[0], "repoURL: https://github.com/o/r\n") || !strings.Contains(docs[1], "repoURL: https://ghe.b.example/o/r\n") || docs[2] != stageIn("team-c") {
				t.Fatalf("migrated:\n%s", written)
			}
			if !strings.Contains(errOut, manifest+":48: cannot migrate gha-dispatch-workflow (step 1 of Stage team-c/deploy, document 3): its credentials Secret \"gh\" is not in namespace team-c") {
				t.Fatalf("team-c's step is not named:\n%s", errOut)
			}
			for _, want := range []string{
				"# Replaces the v1.8 Secret team-a/gh for https://github.com/o/r.\napiVersion: v1\nkind: Secret\nmetadata:\n  name: gh-git\n  namespace: team-a\n",
				"# Replaces the v1.8 Secret team-b/gh for https://ghe.b.example/o/r.\napiVersion: v1\nkind: Secret\nmetadata:\n  name: gh-git\n  namespace: team-b\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("emitted Secrets lack\n%s\nin:\n%s", want, out)
				}
			}
		})
	}
}

func TestMigrateRefusesSecretsWithoutNamespace(t *testing.T) {
	dir := t.TempDir()
	secretsFile := filepath.Join(dir, "secrets.yaml")
	_ = os.WriteFile(secretsFile, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: gh}\nstringData: {accessToken: t}\n"), 0o600)
	manifest := filepath.Join(dir, "stages.yaml")
	_ = os.WriteFile(manifest, []byte(stageIn("team-a")), 0o644)
	code, out, errOut := runMigrateCmd("--credentials-file", secretsFile, manifest)
	if code != ExitFinal || out != "" || !strings.Contains(errOut, "Secret gh has no metadata.namespace") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
}

// The emitted Secrets are indented as Kubernetes manifests are: two spaces.
func TestMigrateEmitsTwoSpaceYAML(t *testing.T) {
	dir := t.TempDir()
	secretsFile := filepath.Join(dir, "secrets.yaml")
	_ = os.WriteFile(secretsFile, []byte(secretGHTeamA), 0o600)
	manifest := filepath.Join(dir, "stages.yaml")
	_ = os.WriteFile(manifest, []byte(stageIn("team-a")), 0o644)
	code, out, errOut := runMigrateCmd("--credentials-file", secretsFile, "--emit-credentials", manifest)
	want := "metadata:\n  name: gh-git\n  namespace: team-a\n  labels:\n    kargo.akuity.io/cred-type: git\nstringData:\n  password: "
	if code != 0 || !strings.Contains(out, want) || strings.Contains(out, "\n    name:") {
		t.Fatalf("exit %d, want 2-space YAML:\n%s\n%s", code, out, errOut)
	}
}

func runMigrateStdin(stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	f := &Factory{IO: IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}, Getenv: func(string) string { return "" }}
	code := Run(context.Background(), f, append([]string{"migrate"}, args...))
	return code, out.String(), errOut.String()
}

func TestMigrateReadsStdin(t *testing.T) {
	src := stageIn("team-a")
	// A diff on stdout, named stdin.
	code, out, errOut := runMigrateStdin(src, "--github-com", "-")
	if code != 0 || !strings.HasPrefix(out, "--- stdin\n+++ stdin\n@@ -9,9 +9,6 @@\n") || !strings.Contains(out, "+          repoURL: https://github.com/o/r\n") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	// --stdout: the migrated manifest, byte for byte what --write writes.
	code, out, errOut = runMigrateStdin(src, "--github-com", "--stdout", "-")
	if code != 0 || out != strings.Replace(src, "          owner: o\n          repo: r\n          credentials:\n            secretName: gh\n", "          repoURL: https://github.com/o/r\n", 1) {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	// Steps left alone are named after stdin.
	if _, _, errOut := runMigrateStdin(src, "-"); !strings.Contains(errOut, "stdin:12: cannot migrate gha-dispatch-workflow (step 1 of Stage team-a/deploy, document 1)") {
		t.Fatalf("stderr:\n%s", errOut)
	}
}

func TestMigrateRefusesImpossibleCombinations(t *testing.T) {
	for name, tt := range map[string]struct {
		args []string
		want string
	}{
		"--write with stdin":              {[]string{"--write", "-"}, `"-" (stdin) is not a file`},
		"stdin and a file":                {[]string{"-", "stages.yaml"}, "give it alone"},
		"--stdout and --write":            {[]string{"--stdout", "--write", "x.yaml"}, "--stdout prints the migrated manifest"},
		"--stdout and two files":          {[]string{"--stdout", "testdata", "../migrate/testdata"}, "--stdout prints one migrated manifest"},
		"--stdout and --emit-credentials": {[]string{"--stdout", "--emit-credentials", "-"}, "both print on stdout"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runMigrateStdin(stageIn("team-a"), tt.args...)
			if code != ExitFinal || out != "" || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
			}
		})
	}
}
