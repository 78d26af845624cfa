// Package repourl turns the repository URLs users write in step
// configurations into the GitHub repository and API endpoint they name.
package repourl

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// Repository is a GitHub repository and the REST API that serves it.
type Repository struct {
	// Host is the web host, lower-cased, with a port when one was given.
	Host string
	// Owner is the user or organisation that owns the repository.
	Owner string
	// Name is the repository's name, without a ".git" suffix.
	Name string
	// APIBaseURL is the REST API root, always ending in "/".
	APIBaseURL string
	// UploadURL is the uploads API root, always ending in "/".
	UploadURL string
	// Enterprise is true for GitHub Enterprise Server hosts.
	Enterprise bool
}

// FullName is "owner/name".
func (r Repository) FullName() string { return r.Owner + "/" + r.Name }

// WebURL is the repository's canonical https address.
func (r Repository) WebURL() string {
	scheme := "https"
	if strings.HasPrefix(r.APIBaseURL, "http://") {
		scheme = "http"
	}
	return scheme + "://" + r.Host + "/" + r.FullName()
}

// Options adjusts what Parse accepts.
type Options struct {
	// AllowHTTP permits plain-text http:// URLs; without it they are refused
	// because the token would cross the network unencrypted.
	AllowHTTP bool
}

var (
	// GitHub's own rules: owners are alphanumerics and single hyphens (GHES
	// also allows "_" and "."), repositories alphanumerics, "-", "_" and ".".
	ownerPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
	// scp-like SSH syntax as git understands it: user@host:owner/repo.git
	scpPattern = regexp.MustCompile(`^([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+):(.+)$`)
)

// Parse understands https://HOST/OWNER/REPO (optionally ending in ".git" or
// "/"), ssh://[user@]HOST[:port]/OWNER/REPO and user@HOST:OWNER/REPO. github.com
// maps to https://api.github.com/, *.ghe.com to its api. subdomain, and any
// other host to GitHub Enterprise Server at https://HOST[:PORT]/api/v3/.
func Parse(raw string, opts Options) (Repository, error) {
	if raw == "" {
		return Repository{}, fmt.Errorf("repository URL is empty")
	}
	for _, c := range raw {
		if c <= ' ' || c == 0x7f {
			return Repository{}, fmt.Errorf("repository URL %q contains whitespace or a control character", raw)
		}
	}
	if m := scpPattern.FindStringSubmatch(raw); m != nil && !strings.Contains(raw, "://") {
		return build(raw, "https", m[2], "", m[3])
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Repository{}, fmt.Errorf("repository URL %q is not a URL: %w", raw, err)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return Repository{}, fmt.Errorf("repository URL %q must not have a query or fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !opts.AllowHTTP {
			return Repository{}, fmt.Errorf("repository URL %q uses plain http, which would send the token unencrypted; use https (or allow http explicitly: --allow-http on the command line)", raw)
		}
	case "ssh", "git+ssh", "ssh+git":
		// The SSH port says nothing about the API port: the API is on 443.
		return build(raw, "https", u.Hostname(), "", u.Path)
	case "":
		return Repository{}, fmt.Errorf("repository URL %q has no scheme; expected https://HOST/OWNER/REPO", raw)
	default:
		return Repository{}, fmt.Errorf("repository URL %q has unsupported scheme %q; expected https", raw, u.Scheme)
	}
	if u.User != nil {
		return Repository{}, fmt.Errorf("repository URL must not contain user information; credentials come from the credentials configuration")
	}
	return build(raw, u.Scheme, u.Hostname(), u.Port(), u.EscapedPath())
}

func build(raw, scheme, hostname, port, path string) (Repository, error) {
	hostname = strings.ToLower(strings.TrimSuffix(hostname, "."))
	if hostname == "" {
		return Repository{}, fmt.Errorf("repository URL %q has no host", raw)
	}
	if strings.ContainsAny(hostname, "%[]") && net.ParseIP(strings.Trim(hostname, "[]")) == nil {
		return Repository{}, fmt.Errorf("repository URL %q has an invalid host", raw)
	}
	owner, name, err := splitPath(path)
	if err != nil {
		return Repository{}, fmt.Errorf("repository URL %q: %w", raw, err)
	}
	host := hostname
	if strings.Contains(hostname, ":") { // IPv6 literal
		host = "[" + hostname + "]"
	}
	if port != "" {
		host += ":" + port
	}
	repo := Repository{Host: host, Owner: owner, Name: name, Enterprise: enterprise(hostname, port)}
	switch {
	case isDotCom(hostname):
		repo.Host = "github.com"
		repo.APIBaseURL = "https://api.github.com/"
		repo.UploadURL = "https://uploads.github.com/"
	case !repo.Enterprise:
		// GitHub Enterprise Cloud with data residency: api.SUBDOMAIN.ghe.com.
		repo.APIBaseURL = "https://api." + hostname + "/"
		repo.UploadURL = "https://uploads." + hostname + "/"
	default:
		repo.APIBaseURL = scheme + "://" + host + "/api/v3/"
		repo.UploadURL = scheme + "://" + host + "/api/uploads/"
	}
	return repo, nil
}

func isDotCom(hostname string) bool { return hostname == "github.com" || hostname == "www.github.com" }

// enterprise tells a GitHub Enterprise Server host (hostname lower-cased,
// port apart): any but github.com and GHE.com's SUBDOMAIN.ghe.com.
func enterprise(hostname, port string) bool {
	return !isDotCom(hostname) && !(strings.HasSuffix(hostname, ".ghe.com") && port == "")
}

// EnterpriseHost reports whether a repository URL's host (HOST or
// HOST:PORT) is a GitHub Enterprise Server, as Parse classifies it.
func EnterpriseHost(host string) bool {
	u := url.URL{Host: host}
	return enterprise(strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")), u.Port())
}

func splitPath(path string) (owner, name string, err error) {
	p := strings.TrimPrefix(path, "/")
	p = strings.TrimSuffix(p, "/")
	p = strings.TrimSuffix(p, ".git")
	parts := strings.Split(p, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", fmt.Errorf("path must be /OWNER/REPO")
	}
	owner, name = parts[0], parts[1]
	if !ownerPattern.MatchString(owner) || strings.Contains(owner, "..") {
		return "", "", fmt.Errorf("owner %q is not a valid GitHub user or organisation name", owner)
	}
	if !namePattern.MatchString(name) || name == "." || name == ".." || strings.Contains(name, "..") {
		return "", "", fmt.Errorf("repository name %q is not a valid GitHub repository name", name)
	}
	return owner, name, nil
}

// FromLegacy builds the repository of a v1.8 configuration: owner and repo
// on github.com, or on the host whose API baseURL (the credentials Secret's
// optional key, such as https://ghe.example.com/api/v3) is. It is the one
// mapping from the v1.8 fields to a repository: the steps use it, and so
// does the migration to repoURL, so that both name the same repository.
// Hosts are case-insensitive and come out lower-cased, as Parse does; owner
// and repo keep their case.
func FromLegacy(owner, name, baseURL string, opts Options) (Repository, error) {
	root, err := legacyWebRoot(baseURL)
	if err != nil {
		return Repository{}, err
	}
	return Parse(root+"/"+owner+"/"+name, opts)
}

// legacyWebRoot is the web root (scheme://host[:port]) served by the API at
// baseURL: api.github.com is github.com's API and api.SUBDOMAIN.ghe.com
// SUBDOMAIN.ghe.com's, while an Enterprise Server serves its API on its
// own host (under /api/v3, which Parse adds back).
func legacyWebRoot(baseURL string) (string, error) {
	if baseURL == "" {
		return "https://github.com", nil
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("baseURL %q is not a URL", baseURL)
	}
	host := strings.ToLower(u.Host)
	hostname := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	switch {
	case hostname == "api.github.com":
		return "https://github.com", nil
	case strings.HasSuffix(hostname, ".ghe.com"):
		host = strings.TrimPrefix(host, "api.")
	}
	return u.Scheme + "://" + host, nil
}
