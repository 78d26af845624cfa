package repourl

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in          string
		allowHTTP         bool
		api, owner, repo  string
		host, errContains string
	}{
		{name: "github.com", in: "https://github.com/myorg/my-app", api: "https://api.github.com/", owner: "myorg", repo: "my-app", host: "github.com"},
		{name: "dot git and slash", in: "https://github.com/myorg/my-app.git/", api: "https://api.github.com/", owner: "myorg", repo: "my-app"},
		{name: "host case", in: "https://GitHub.COM/myorg/my-app", api: "https://api.github.com/", owner: "myorg", repo: "my-app"},
		{name: "www", in: "https://www.github.com/o/r", api: "https://api.github.com/", owner: "o", repo: "r"},
		{name: "ghes", in: "https://ghe.example.com/team/svc", api: "https://ghe.example.com/api/v3/", owner: "team", repo: "svc", host: "ghe.example.com"},
		{name: "ghes port", in: "https://ghe.example.com:8443/team/svc.git", api: "https://ghe.example.com:8443/api/v3/", owner: "team", repo: "svc", host: "ghe.example.com:8443"},
		{name: "ghe.com data residency", in: "https://octo.ghe.com/o/r", api: "https://api.octo.ghe.com/", owner: "o", repo: "r"},
		{name: "scp ssh", in: "git@github.com:myorg/my-app.git", api: "https://api.github.com/", owner: "myorg", repo: "my-app"},
		{name: "ssh url with port", in: "ssh://git@ghe.example.com:2222/team/svc.git", api: "https://ghe.example.com/api/v3/", owner: "team", repo: "svc"},
		{name: "http refused", in: "http://ghe.example.com/o/r", errContains: "plain http"},
		{name: "http allowed", in: "http://ghe.example.com/o/r", allowHTTP: true, api: "http://ghe.example.com/api/v3/", owner: "o", repo: "r"},
		{name: "user info", in: "https://user:pw@github.com/o/r", errContains: "user information"},
		{name: "query", in: "https://github.com/o/r?x=1", errContains: "query or fragment"},
		{name: "fragment", in: "https://github.com/o/r#main", errContains: "query or fragment"},
		{name: "too deep", in: "https://github.com/o/r/tree/main", errContains: "/OWNER/REPO"},
		{name: "owner only", in: "https://github.com/o", errContains: "/OWNER/REPO"},
		{name: "not a url", in: "my-app", errContains: "no scheme"},
		{name: "bad owner", in: "https://github.com/-x/r", errContains: "owner"},
		{name: "dot dot", in: "https://github.com/o/..", errContains: "repository name"},
		{name: "encoded slash", in: "https://github.com/o%2Fx/r", errContains: "owner"},
		{name: "space", in: "https://github.com/o/r ", errContains: "whitespace"},
		{name: "ftp", in: "ftp://github.com/o/r", errContains: "unsupported scheme"},
		{name: "empty", in: "", errContains: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in, Options{AllowHTTP: tt.allowHTTP})
			if tt.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Fatalf("Parse(%q) error = %v, want one containing %q", tt.in, err, tt.errContains)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got.APIBaseURL != tt.api || got.Owner != tt.owner || got.Name != tt.repo {
				t.Fatalf("Parse(%q) = %+v, want api %s owner %s repo %s", tt.in, got, tt.api, tt.owner, tt.repo)
			}
			if tt.host != "" && got.Host != tt.host {
				t.Fatalf("Host = %q, want %q", got.Host, tt.host)
			}
		})
	}
}

func TestFromLegacy(t *testing.T) {
	r, err := FromLegacy("team", "svc", "https://ghe.example.com/api/v3", Options{})
	if err != nil || r.APIBaseURL != "https://ghe.example.com/api/v3/" || r.WebURL() != "https://ghe.example.com/team/svc" {
		t.Fatalf("FromLegacy = %+v, %v", r, err)
	}
	r, err = FromLegacy("myorg", "app", "", Options{})
	if err != nil || r.APIBaseURL != "https://api.github.com/" || r.WebURL() != "https://github.com/myorg/app" {
		t.Fatalf("FromLegacy github.com = %+v, %v", r, err)
	}
	r, err = FromLegacy("myorg", "app", "https://api.github.com/", Options{})
	if err != nil || r.Host != "github.com" {
		t.Fatalf("FromLegacy api.github.com = %+v, %v", r, err)
	}
}
