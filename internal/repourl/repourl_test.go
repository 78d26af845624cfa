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

// TestFromLegacy: the v1.8 mapping the steps and the migration share.
// Hosts are case-insensitive, so they come out lower-cased; owner and repo
// keep their case; the API path, a trailing slash or none, says nothing.
func TestFromLegacy(t *testing.T) {
	tests := []struct {
		name, baseURL string
		allowHTTP     bool
		web, api      string
		enterprise    bool
		errContains   string
	}{
		{name: "no baseURL is github.com", web: "https://github.com/MyOrg/My-App", api: "https://api.github.com/"},
		{name: "api.github.com", baseURL: "https://api.github.com", web: "https://github.com/MyOrg/My-App", api: "https://api.github.com/"},
		{name: "api.github.com mixed case, slash", baseURL: "https://API.GitHub.com/", web: "https://github.com/MyOrg/My-App", api: "https://api.github.com/"},
		{name: "api.github.com with its port", baseURL: "https://api.github.com:443/", web: "https://github.com/MyOrg/My-App", api: "https://api.github.com/"},
		{name: "github.com web root", baseURL: "https://GitHub.com/", web: "https://github.com/MyOrg/My-App", api: "https://api.github.com/"},
		{name: "ghes /api/v3", baseURL: "https://ghe.example.com/api/v3", web: "https://ghe.example.com/MyOrg/My-App", api: "https://ghe.example.com/api/v3/", enterprise: true},
		{name: "ghes /api/v3/", baseURL: "https://ghe.example.com/api/v3/", web: "https://ghe.example.com/MyOrg/My-App", api: "https://ghe.example.com/api/v3/", enterprise: true},
		{name: "ghes mixed case", baseURL: "https://GHE.Example.com/api/v3", web: "https://ghe.example.com/MyOrg/My-App", api: "https://ghe.example.com/api/v3/", enterprise: true},
		{name: "ghes scheme case", baseURL: "HTTPS://GHE.EXAMPLE.COM/api/v3/", web: "https://ghe.example.com/MyOrg/My-App", api: "https://ghe.example.com/api/v3/", enterprise: true},
		{name: "ghes host only", baseURL: "https://GHE.Example.com", web: "https://ghe.example.com/MyOrg/My-App", api: "https://ghe.example.com/api/v3/", enterprise: true},
		{name: "ghes host and slash", baseURL: "https://ghe.example.com/", web: "https://ghe.example.com/MyOrg/My-App", api: "https://ghe.example.com/api/v3/", enterprise: true},
		{name: "ghes port, mixed case", baseURL: "https://GHE.Example.com:8443/api/v3/", web: "https://ghe.example.com:8443/MyOrg/My-App", api: "https://ghe.example.com:8443/api/v3/", enterprise: true},
		{name: "ghes trailing dot", baseURL: "https://ghe.example.com./api/v3", web: "https://ghe.example.com/MyOrg/My-App", api: "https://ghe.example.com/api/v3/", enterprise: true},
		{name: "ghes IPv6 and port", baseURL: "https://[::1]:8443/api/v3", web: "https://[::1]:8443/MyOrg/My-App", api: "https://[::1]:8443/api/v3/", enterprise: true},
		{name: "ghe.com API host", baseURL: "https://api.Octo.GHE.com/", web: "https://octo.ghe.com/MyOrg/My-App", api: "https://api.octo.ghe.com/"},
		{name: "ghe.com API host, no slash", baseURL: "https://api.octo.ghe.com", web: "https://octo.ghe.com/MyOrg/My-App", api: "https://api.octo.ghe.com/"},
		{name: "ghe.com web host", baseURL: "https://Octo.ghe.com/api/v3", web: "https://octo.ghe.com/MyOrg/My-App", api: "https://api.octo.ghe.com/"},
		{name: "http refused", baseURL: "http://ghe.example.com/api/v3", errContains: "plain http"},
		{name: "http allowed", baseURL: "http://GHE.Example.com/api/v3", allowHTTP: true, web: "http://ghe.example.com/MyOrg/My-App", api: "http://ghe.example.com/api/v3/", enterprise: true},
		{name: "no scheme", baseURL: "ghe.example.com/api/v3", errContains: "not a URL"},
		{name: "unsupported scheme", baseURL: "ftp://ghe.example.com/", errContains: "unsupported scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := FromLegacy("MyOrg", "My-App", tt.baseURL, Options{AllowHTTP: tt.allowHTTP})
			if tt.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Fatalf("FromLegacy(%q) = %+v, %v; want an error containing %q", tt.baseURL, r, err, tt.errContains)
				}
				return
			}
			if err != nil || r.WebURL() != tt.web || r.APIBaseURL != tt.api || r.Enterprise != tt.enterprise {
				t.Fatalf("FromLegacy(%q) = %+v (web %s), %v; want web %s api %s enterprise %v", tt.baseURL, r, r.WebURL(), err, tt.web, tt.api, tt.enterprise)
			}
			// The repoURL a migration writes names the same repository.
			if again, err := Parse(r.WebURL(), Options{AllowHTTP: tt.allowHTTP}); err != nil || again != r {
				t.Fatalf("Parse(%s) = %+v, %v; want %+v", r.WebURL(), again, err, r)
			}
		})
	}
	if _, err := FromLegacy("my org", "app", "", Options{}); err == nil {
		t.Fatal("an owner with a space was accepted")
	}
}

// EnterpriseHost classifies a host as Parse does (the credentials' token
// variables follow it).
func TestEnterpriseHostAgreesWithParse(t *testing.T) {
	for _, host := range []string{"github.com", "www.github.com", "GitHub.com.", "octo.ghe.com", "octo.ghe.com:8443", "ghe.com", "ghe.example.com", "GHE.example.com:8443", "10.0.0.1:8443", "[::1]:8443", "github.localhost"} {
		repo, err := Parse("https://"+host+"/o/r", Options{})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if got := EnterpriseHost(host); got != repo.Enterprise {
			t.Errorf("EnterpriseHost(%q) = %t, Parse says %t", host, got, repo.Enterprise)
		}
	}
}
