package safetext

import (
	"strings"
	"testing"
)

// After "token", "bearer" and "basic", credentials are redacted and words
// are kept.
func TestRedactTellsCredentialsFromWords(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"bearer installation token", "Authorization: Bearer ghs_abcdefghijklmnop1234567890", "Authorization: Bearer " + Redacted},
		{"classic token", "token ghp_abcdefghijklmnopqrstuvwxyzabcd", "token " + Redacted},
		{"hex token", "token 0123456789abcdef0123456789abcdef", "token " + Redacted},
		{"basic base64 without digits", "Proxy-Authorization: Basic dXNlcjpwYXNz", "Proxy-Authorization: Basic " + Redacted},
		{"basic base64 with padding", "Basic cHJveHl1c2VyOlMzY3JldA==", "Basic " + Redacted},
		{"short value with a digit", "bearer abc12345", "bearer " + Redacted},
		{"long opaque value", "bearer abcdefghijklmnopqrstuvwx", "bearer " + Redacted},
		{"bearer jwt", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJl", "Bearer " + Redacted},
		{"token unencrypted", "which would send the token unencrypted; use https", "which would send the token unencrypted; use https"},
		{"bearer authentication", "Bearer authentication failed", "Bearer authentication failed"},
		{"basic settings", "check the basic settings.", "check the basic settings."},
		{"token GitHub", "the token GitHub issued expired", "the token GitHub issued expired"},
		{"token variable name", "the token GITHUB_TOKEN is empty", "the token GITHUB_TOKEN is empty"},
		{"token read/write", "a token read/write access", "a token read/write access"},
		{"token of an input", "token workflow_dispatch trigger", "token workflow_dispatch trigger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.in); got != tt.want {
				t.Fatalf("Redact(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

// The user information of a URL goes, user and password, in any text.
func TestRedactRemovesURLUserInfo(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"proxy URL", "proxyconnect http://proxyuser:S3cretPassw0rd@10.0.0.1:3128 refused", "proxyconnect http://" + Redacted + "@10.0.0.1:3128 refused"},
		{"quoted unparsable", `invalid proxy address "http://proxyuser:S3cret@[::1": missing ']'`, `invalid proxy address "http://` + Redacted + `@[::1": missing ']'`},
		{"password with an @ and a /", "https://u:p@ss/w@rd@proxy:8080/", "https://" + Redacted + "@proxy:8080/"},
		{"masked password", "http://proxyuser:***@proxy:3128", "http://" + Redacted + "@proxy:3128"},
		{"no user info", "see https://github.com/o/r/actions/runs/1", "see https://github.com/o/r/actions/runs/1"},
		{"user without password", "ssh://git@github.com/o/r", "ssh://git@github.com/o/r"},
		{"port, no user info", "https://ghe.example.com:8443/api/v3/", "https://ghe.example.com:8443/api/v3/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(tt.in)
			if got != tt.want {
				t.Fatalf("Redact(%q) = %q; want %q", tt.in, got, tt.want)
			}
			for _, secret := range []string{"proxyuser", "S3cret", "p@ss"} {
				if strings.Contains(got, secret) {
					t.Fatalf("%q still holds %q", got, secret)
				}
			}
		})
	}
}

// A credential passed as a parameter goes, in a query or a key=value line;
// the parameter's name and everything else stay.
func TestRedactRemovesSecretParameters(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"token in a query", "GET https://ghe.example.com/api/v3/x?token=abc123&page=2 failed", "GET https://ghe.example.com/api/v3/x?token=" + Redacted + "&page=2 failed"},
		{"access_token", "redirected to https://h/cb#x&access_token=s3cr3t", "redirected to https://h/cb#x&access_token=" + Redacted},
		{"password line", "password=hunter2 in the proxy file", "password=" + Redacted + " in the proxy file"},
		{"signed blob URL", "https://blob.example/a.zip?sig=AbC%2Fd&se=2026", "https://blob.example/a.zip?sig=" + Redacted + "&se=2026"},
		{"quoted", `"client_secret=xyz"`, `"client_secret=` + Redacted + `"`},
		{"no value words", "set token= in the file, or a password", "set token= in the file, or a password"},
		{"other parameters", "?per_page=100&created=>=2026-12-02", "?per_page=100&created=>=2026-12-02"},
		{"a key name ending like one", "mytoken=1 ftoken=2", "mytoken=1 ftoken=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.in); got != tt.want {
				t.Fatalf("Redact(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}
