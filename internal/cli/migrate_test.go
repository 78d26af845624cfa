package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kargo-gha/kargo-gha/internal/migrate"
)

func migrateFixture(t *testing.T) (dir string, secrets string) {
	t.Helper()
	dir = t.TempDir()
	src, err := os.ReadFile("../migrate/testdata/manifests.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "stages", ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	for path, content := range map[string][]byte{
		"stages/uat.yaml":      src,
		"stages/.git/x.yaml":   src, // hidden directories are skipped
		"stages/readme.md":     []byte("owner: x"),
		"current.yml":          []byte("kind: Stage\nspec:\n  promotionTemplate:\n    spec:\n      steps:\n      - uses: gha-dispatch-workflow\n        config:\n          repoURL: https://github.com/o/r\n"),
		"not-kargo/other.yaml": []byte("kind: ConfigMap\ndata:\n  owner: me\n"),
	} {
		p := filepath.Join(dir, path)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, content, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	secrets = filepath.Join(t.TempDir(), "secrets.yaml")
	_ = os.WriteFile(secrets, []byte(`apiVersion: v1
kind: Secret
metadata: {name: github-credentials, namespace: kargo-demo}
stringData: {accessToken: ghp_legacy_token_abcdefghijkl}
---
apiVersion: v1
kind: Secret
metadata: {name: ghes-credentials, namespace: kargo-demo}
stringData: {accessToken: ghp_ghes_token_abcdefghijkl, baseURL: "https://ghe.example.com/api/v3"}
`), 0o600)
	return dir, secrets
}

func runMigrateCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	f := &Factory{IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Getenv: func(string) string { return "" }}
	code := Run(context.Background(), f, append([]string{"migrate"}, args...))
	return code, out.String(), errOut.String()
}

func TestMigrateDiffCheckAndWrite(t *testing.T) {
	dir, secrets := migrateFixture(t)
	uat := filepath.Join(dir, "stages", "uat.yaml")
	before, _ := os.ReadFile(uat)

	// Default: a diff, nothing written.
	code, out, errOut := runMigrateCmd(dir, "--credentials-file", secrets)
	if code != 0 || !strings.Contains(out, "--- "+uat) || !strings.Contains(out, "+      repoURL: https://ghe.example.com/platform/service") ||
		!strings.Contains(out, "-          repo: \"my-app\"") {
		t.Fatalf("exit %d, diff:\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, uat+":69: cannot migrate gha-dispatch-workflow (step 1 of PromotionTask kargo-demo/deploy-anywhere, document 3): owner or repo is an expression") || !strings.Contains(errOut, "3 file(s) read, 1 with v1.8 steps, 2 step(s) to migrate by hand") {
		t.Fatalf("stderr:\n%s", errOut)
	}
	if after, _ := os.ReadFile(uat); !bytes.Equal(after, before) {
		t.Fatal("the default mode wrote the file")
	}

	// --check fails while v1.8 configurations remain.
	if code, _, _ := runMigrateCmd("--check", dir); code != ExitFinal {
		t.Fatalf("--check exit %d", code)
	}

	// --write rewrites in place, keeping the mode, to exactly the migration.
	if code, _, errOut := runMigrateCmd("--write", "--credentials-file", secrets, dir); code != 0 {
		t.Fatalf("--write exit %d: %s", code, errOut)
	}
	after, _ := os.ReadFile(uat)
	want, _ := migrate.File(before, migrate.Options{Secrets: []migrate.Secret{
		{SecretRef: migrate.SecretRef{Namespace: "kargo-demo", Name: "ghes-credentials"}, BaseURL: "https://ghe.example.com/api/v3"},
		{SecretRef: migrate.SecretRef{Namespace: "kargo-demo", Name: "github-credentials"}},
	}})
	if !bytes.Equal(after, want.Output) {
		t.Fatalf("written file differs from the migration:\n%s", after)
	}
	if info, _ := os.Stat(uat); info.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", info.Mode().Perm())
	}
	hidden, _ := os.ReadFile(filepath.Join(dir, "stages", ".git", "x.yaml"))
	if !bytes.Equal(hidden, before) {
		t.Fatal("a file under a hidden directory was changed")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "stages", ".uat.yaml.*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
	// What remains needs a hand: --check still fails, on the two problems.
	if code, _, errOut := runMigrateCmd("--check", dir); code != ExitFinal || !strings.Contains(errOut, "0 with v1.8 steps, 2 step(s) to migrate by hand") {
		t.Fatalf("--check after --write: %d %s", code, errOut)
	}
}

func TestMigrateEmitsCredentialsWithoutShowingTokens(t *testing.T) {
	dir, secrets := migrateFixture(t)
	code, out, errOut := runMigrateCmd("--credentials-file", secrets, "--emit-credentials", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"name: github-credentials-git", "kargo.akuity.io/cred-type: git", "repoURL: https://github.com/myorg/my-app",
		"name: ghes-credentials-git", "repoURL: https://ghe.example.com/platform/service", "REPLACE_WITH_THE_TOKEN (29 characters"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out+errOut, "ghp_legacy_token") || strings.Contains(out+errOut, "ghp_ghes_token") {
		t.Fatal("a token was printed without --show-secrets")
	}
	// stdout is the Secrets alone, ready for "> git-credentials.yaml"; the
	// diff went to stderr.
	if strings.Contains(out, "--- ") || !strings.Contains(errOut, "--- ") {
		t.Fatalf("the diff is on stdout with --emit-credentials:\n%s", out)
	}
	for _, doc := range strings.Split(out, "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil || m["kind"] != "Secret" {
			t.Fatalf("stdout is not Secret manifests: %v\n%s", err, doc)
		}
	}
	_, out, _ = runMigrateCmd("--credentials-file", secrets, "--emit-credentials", "--show-secrets", dir)
	if !strings.Contains(out, "password: ghp_legacy_token_abcdefghijkl") {
		t.Fatalf("--show-secrets did not print the token:\n%s", out)
	}
}

// Without the Secrets, a step's host is unknown: it is left alone, not
// turned into a github.com URL, unless --github-com says so.
func TestMigrateWithoutCredentialsFileDoesNotGuessTheHost(t *testing.T) {
	dir, _ := migrateFixture(t)
	code, out, errOut := runMigrateCmd(dir)
	if code != 0 || strings.Contains(out, "repoURL: https://github.com/platform/service") || !strings.Contains(errOut, "host") || !strings.Contains(errOut, "--github-com") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	if _, out, _ := runMigrateCmd("--github-com", dir); !strings.Contains(out, "+          repoURL: https://github.com/myorg/my-app") {
		t.Fatalf("--github-com:\n%s", out)
	}
}

func TestMigrateRefusesBadYAMLAndFlags(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("kind: Stage\nspec: [unclosed\n"), 0o644)
	if code, _, errOut := runMigrateCmd(bad); code != ExitFinal || !strings.Contains(errOut, bad+": not valid YAML") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, _, errOut := runMigrateCmd("--write", "--check", bad); code != ExitFinal || !strings.Contains(errOut, "not both") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestMigrateMapsHostsAsTheStepsDo: the repoURL in the diff and in the
// emitted Git-credential Secret is the repository the v1.8 step used, from
// the Secret's baseURL however it is written.
func TestMigrateMapsHostsAsTheStepsDo(t *testing.T) {
	tests := []struct{ name, baseURL, want string }{
		{"github.com", "", "https://github.com/Platform/Service"},
		{"api.github.com mixed case", "https://API.GitHub.com", "https://github.com/Platform/Service"},
		{"ghes mixed case", "https://GHE.Example.com/api/v3", "https://ghe.example.com/Platform/Service"},
		{"ghes slash and port", "https://GHE.Example.com:8443/api/v3/", "https://ghe.example.com:8443/Platform/Service"},
		{"ghes host only", "https://ghe.example.com/", "https://ghe.example.com/Platform/Service"},
		{"ghe.com", "https://api.Octo.ghe.com/", "https://octo.ghe.com/Platform/Service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			manifest := filepath.Join(dir, "task.yaml")
			_ = os.WriteFile(manifest, []byte("kind: PromotionTask\nmetadata: {name: t, namespace: p}\nspec:\n  steps:\n  - uses: gha-dispatch-workflow\n    config:\n      owner: Platform\n      repo: Service\n      credentials:\n        secretName: gh\n      workflowFile: deploy.yml\n      ref: main\n"), 0o644)
			secrets := filepath.Join(dir, "secrets.yaml")
			_ = os.WriteFile(secrets, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: gh, namespace: p}\nstringData: {accessToken: t, baseURL: \""+tt.baseURL+"\"}\n"), 0o600)
			code, out, errOut := runMigrateCmd("--credentials-file", secrets, "--emit-credentials", manifest)
			if code != 0 || !strings.Contains(out, "repoURL: "+tt.want+"\n") || !strings.Contains(errOut, "+      repoURL: "+tt.want+"\n") {
				t.Fatalf("exit %d, want repoURL %s\nstdout:\n%s\nstderr:\n%s", code, tt.want, out, errOut)
			}
		})
	}
}
