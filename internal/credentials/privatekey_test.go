package credentials

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A GitHub App private key that cannot sign says where it came from (the
// variable, the file, the Secret and its key) and what is wrong, and never
// shows any of itself.
func TestBadPrivateKeySaysWhereItCameFrom(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})
	cut := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)[:200]})
	file := filepath.Join(t.TempDir(), "app.pem")
	const secretText = "c2VjcmV0LWtleS1tYXRlcmlhbA"
	if err := os.WriteFile(file, []byte(secretText), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	app := map[string]string{"GITHUB_APP_ID": "12", "GITHUB_APP_INSTALLATION_ID": "34"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range app {
			m[a] = b
		}
		return m
	}
	fromEnv := func(m map[string]string) *App {
		c, err := FromEnv(env(m))
		if err != nil {
			t.Fatal(err)
		}
		return c.App
	}
	secret, err := FromGitSecret(Secret{Namespace: "kargo-demo", Name: "gh-app", Data: map[string]string{
		KeyAppClientID: "Iv23li", KeyAppInstallationID: "42", KeyAppPrivateKey: secretText,
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		app  *App
		want []string
	}{
		{"not PEM, in the variable", fromEnv(with(EnvAppPrivateKey, secretText)), []string{"from GITHUB_APP_PRIVATE_KEY is not PEM text"}},
		{"not PEM, in a file", fromEnv(with(EnvAppPrivateKeyFile, file)), []string{"from GITHUB_APP_PRIVATE_KEY_FILE (" + file + ") is not PEM text"}},
		{"not PEM, in a Secret", secret.App, []string{"kargo-demo/gh-app", "key githubAppPrivateKey", "is not PEM text"}},
		{"a public key", fromEnv(with(EnvAppPrivateKey, string(pub))), []string{"from GITHUB_APP_PRIVATE_KEY is a PEM \"PUBLIC KEY\" block, not a private key"}},
		{"not RSA", fromEnv(with(EnvAppPrivateKey, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})))), []string{"is not an RSA key"}},
		{"cut", fromEnv(with(EnvAppPrivateKey, string(cut))), []string{"does not parse (cut or altered?)"}},
	} {
		_, err := NewInstallationTokenSource(tc.app, nil)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v; want %q", tc.name, err, w)
			}
		}
		if strings.Contains(err.Error(), secretText) || strings.Contains(err.Error(), "MII") {
			t.Errorf("%s: the key shows: %v", tc.name, err)
		}
	}
	good := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	if _, err := NewInstallationTokenSource(fromEnv(with(EnvAppPrivateKey, string(good))), nil); err != nil {
		t.Fatalf("a good key: %v", err)
	}
}

// Tokens are read in the GitHub CLI's order for the repository's host:
// the Enterprise variables first for an Enterprise Server.
func TestTokenVariablesFollowTheGitHubCLI(t *testing.T) {
	all := map[string]string{"GH_ENTERPRISE_TOKEN": "e1", "GITHUB_ENTERPRISE_TOKEN": "e2", "GH_TOKEN": "t1", "GITHUB_TOKEN": "t2"}
	for _, tc := range []struct {
		host    string
		env     []string // set, of all
		want    string
		wantSrc string
	}{
		{"github.com", []string{"GH_ENTERPRISE_TOKEN", "GH_TOKEN", "GITHUB_TOKEN"}, "t1", "GH_TOKEN"},
		{"github.com", []string{"GH_ENTERPRISE_TOKEN", "GITHUB_TOKEN"}, "t2", "GITHUB_TOKEN"},
		{"octo.ghe.com", []string{"GH_ENTERPRISE_TOKEN", "GH_TOKEN"}, "t1", "GH_TOKEN"},
		{"www.github.com", []string{"GH_ENTERPRISE_TOKEN", "GH_TOKEN"}, "t1", "GH_TOKEN"},
		{"ghe.example.com", []string{"GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN", "GH_TOKEN"}, "e1", "GH_ENTERPRISE_TOKEN"},
		{"GHE.example.com:8443", []string{"GITHUB_ENTERPRISE_TOKEN", "GH_TOKEN"}, "e2", "GITHUB_ENTERPRISE_TOKEN"},
		{"ghe.example.com", []string{"GITHUB_TOKEN"}, "t2", "GITHUB_TOKEN"}, // no Enterprise variable: the fallback
	} {
		m := map[string]string{}
		for _, k := range tc.env {
			m[k] = all[k]
		}
		c, err := FromEnvFor(func(k string) string { return m[k] }, tc.host)
		if err != nil || c.Token != tc.want || c.Source != tc.wantSrc {
			t.Errorf("%s with %v: %v %v; want %s from %s", tc.host, tc.env, c, err, tc.want, tc.wantSrc)
		}
	}
	if _, err := FromEnvFor(func(string) string { return "" }, "ghe.example.com"); err != ErrNone {
		t.Errorf("nothing set: %v", err)
	}
}
