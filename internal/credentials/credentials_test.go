package credentials

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

var manifests = `
apiVersion: v1
kind: Secret
metadata:
  name: b-pattern
  namespace: kargo-demo
  labels: {kargo.akuity.io/cred-type: git}
stringData:
  repoURL: ^https://github\.com/myorg/.*$
  repoURLIsRegex: "true"
  password: ghp_pattern_b
---
apiVersion: v1
kind: Secret
metadata:
  name: a-pattern
  namespace: kargo-demo
  labels: {kargo.akuity.io/cred-type: git}
stringData:
  repoURL: ^https://github\.com/.*$
  repoURLIsRegex: "true"
  password: ghp_pattern_a
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
data: {x: y}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata:
    name: z-exact
    namespace: kargo-demo
    labels: {kargo.akuity.io/cred-type: git}
  data:
    repoURL: ` + b64("https://github.com/myorg/my-app.git") + `
    username: ` + b64("kargo") + `
    password: ` + b64("ghp_exact_z") + `
- apiVersion: v1
  kind: Secret
  metadata:
    name: shared
    namespace: kargo-shared-resources
    labels: {kargo.akuity.io/cred-type: git}
  stringData:
    repoURL: https://github.com/other/repo
    githubAppClientID: Iv23liexample
    githubAppInstallationID: "42"
    githubAppPrivateKey: ` + "'" + `-----BEGIN RSA PRIVATE KEY-----
      MIIEsecret
      -----END RSA PRIVATE KEY-----'
- apiVersion: v1
  kind: Secret
  metadata: {name: github-credentials, namespace: kargo-demo}
  stringData:
    accessToken: ghp_legacy
    baseURL: https://ghe.example.com/api/v3
`

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestFindGitFollowsKargosOrder(t *testing.T) {
	secrets, err := ParseSecrets(strings.NewReader(manifests))
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets) != 5 {
		t.Fatalf("parsed %d secrets, want 5", len(secrets))
	}
	tests := []struct {
		project, url, wantSource, wantToken string
		app                                 bool
		wantErr                             error
	}{
		// Exact match wins over patterns, despite its name sorting last.
		{project: "kargo-demo", url: "https://GitHub.com/myorg/my-app/", wantSource: "Secret kargo-demo/z-exact", wantToken: "ghp_exact_z"},
		// Among patterns, lexical order of names: a-pattern before b-pattern.
		{project: "kargo-demo", url: "https://github.com/myorg/other", wantSource: "Secret kargo-demo/a-pattern", wantToken: "ghp_pattern_a"},
		// The shared namespace comes after the project's: the project's pattern wins.
		{project: "kargo-demo", url: "https://github.com/other/repo", wantSource: "Secret kargo-demo/a-pattern"},
		// Another project sees only the shared Secret.
		{project: "elsewhere", url: "https://github.com/other/repo", wantSource: "Secret kargo-shared-resources/shared", app: true},
		{project: "elsewhere", url: "https://gitlab.com/x/y", wantErr: ErrNone},
	}
	for _, tt := range tests {
		c, err := FindGit(secrets, tt.project, tt.url)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s %s: err = %v, want %v", tt.project, tt.url, err, tt.wantErr)
			}
			continue
		}
		if err != nil || c.Source != tt.wantSource || (tt.wantToken != "" && c.Token != tt.wantToken) || (c.App != nil) != tt.app {
			t.Errorf("%s %s: got %s (app %v), %v; want %s", tt.project, tt.url, c.Source, c.App != nil, err, tt.wantSource)
		}
		if tt.app && (c.App.ClientID != "Iv23liexample" || c.App.InstallationID != 42 || !strings.HasPrefix(string(c.App.PrivateKeyPEM), "-----BEGIN")) {
			t.Errorf("app credentials not read: %+v", *c.App)
		}
	}
}

func TestLegacySecret(t *testing.T) {
	secrets, _ := ParseSecrets(strings.NewReader(manifests))
	c, err := FromLegacySecret(secrets, "kargo-demo", "github-credentials")
	if err != nil || c.Token != "ghp_legacy" || c.BaseURL != "https://ghe.example.com/api/v3" {
		t.Fatalf("got %v, %v", c, err)
	}
	if _, err := FromLegacySecret(secrets, "kargo-demo", "missing"); !errors.Is(err, ErrNone) {
		t.Fatalf("missing secret: %v", err)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	c := Credentials{Token: "ghp_supersecret", Source: "test"}
	a := Credentials{App: &App{ClientID: "Iv1", InstallationID: 1, PrivateKeyPEM: []byte("-----BEGIN KEY supersecret")}, Source: "test"}
	for _, v := range []any{c, &c, a, *a.App, a.App} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, "supersecret") {
				t.Errorf("%s of %T printed the secret: %s", verb, v, out)
			}
		}
	}
}

func TestParseSecretsErrorsDoNotEchoData(t *testing.T) {
	_, err := ParseSecrets(strings.NewReader("kind: Secret\nmetadata: {name: x}\ndata:\n  password: \"ghp_not_base64!!\"\n"))
	if err == nil || strings.Contains(err.Error(), "ghp_not_base64") {
		t.Fatalf("err = %v", err)
	}
	_, err = ParseSecrets(strings.NewReader("kind: Secret\nmetadata: {name: x}\nstringData:\n  password: \"ghp_tok\n  bad: [\n"))
	if err == nil || strings.Contains(err.Error(), "ghp_tok") {
		t.Fatalf("err = %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	// GH_TOKEN wins, as in the GitHub CLI.
	c, err := FromEnv(env(map[string]string{"GH_TOKEN": "t2", "GITHUB_TOKEN": "t1"}))
	if err != nil || c.Token != "t2" || c.Source != "GH_TOKEN" {
		t.Fatalf("got %v %v", c, err)
	}
	c, err = FromEnv(env(map[string]string{"GITHUB_TOKEN": "t1"}))
	if err != nil || c.Token != "t1" || c.Source != "GITHUB_TOKEN" {
		t.Fatalf("got %v %v", c, err)
	}
	if _, err := FromEnv(env(nil)); !errors.Is(err, ErrNone) {
		t.Fatalf("empty env: %v", err)
	}
	_, err = FromEnv(env(map[string]string{"GITHUB_APP_ID": "12"}))
	if err == nil || !strings.Contains(err.Error(), "GITHUB_APP_INSTALLATION_ID") {
		t.Fatalf("missing installation: %v", err)
	}
	c, err = FromEnv(env(map[string]string{"GITHUB_APP_ID": "12", "GITHUB_APP_INSTALLATION_ID": "34", "GITHUB_APP_PRIVATE_KEY": "-----BEGIN"}))
	if err != nil || c.App.AppID != 12 || c.App.InstallationID != 34 || c.App.Issuer() != "12" {
		t.Fatalf("got %v %v", c, err)
	}
}
