package credentials

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kargo's Git-credential Secret format (see Kargo's credentials package).
const (
	CredTypeLabel          = "kargo.akuity.io/cred-type"
	CredTypeGit            = "git"
	KeyRepoURL             = "repoURL"
	KeyRepoURLIsRegex      = "repoURLIsRegex"
	KeyUsername            = "username"
	KeyPassword            = "password"
	KeyAppClientID         = "githubAppClientID"
	KeyAppID               = "githubAppID"
	KeyAppInstallationID   = "githubAppInstallationID"
	KeyAppPrivateKey       = "githubAppPrivateKey"
	LegacyKeyAccessToken   = "accessToken"
	LegacyKeyBaseURL       = "baseURL"
	LegacyKeyUploadURL     = "uploadURL"
	SharedResourcesProject = "kargo-shared-resources"
)

// Secret is the part of a Kubernetes Secret manifest this project reads, with
// data decoded (stringData wins over data, as the API server applies it).
type Secret struct {
	Name      string
	Namespace string
	Labels    map[string]string
	Data      map[string]string
}

// Ref names the Secret for messages, never its contents.
func (s Secret) Ref() string {
	if s.Namespace == "" {
		return "Secret " + s.Name
	}
	return "Secret " + s.Namespace + "/" + s.Name
}

type manifest struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   manifestMeta      `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Items      []manifest        `yaml:"items"`
}

type manifestMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

// ParseSecrets reads Kubernetes Secret manifests: several YAML (or JSON)
// documents, or a v1 List or SecretList. Documents of other kinds are
// skipped, so a whole directory's manifests can be passed. Errors name the
// document but never echo its data. Input of more than
// MaxCredentialsFileBytes is refused (ErrTooLarge).
func ParseSecrets(r io.Reader) ([]Secret, error) {
	data, err := readLimited(r, MaxCredentialsFileBytes)
	if errors.Is(err, ErrTooLarge) {
		return nil, tooLarge("the Secret manifests", MaxCredentialsFileBytes)
	}
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Secret
	for doc := 1; ; doc++ {
		m, err := decodeManifest(dec)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d is not a valid manifest: %s", doc, err)
		}
		secrets, err := secretsOf(m)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		out = append(out, secrets...)
	}
}

// decodeManifest decodes the next document, its mappings checked first
// (checkMappings). Its errors are redacted.
func decodeManifest(dec *yaml.Decoder) (manifest, error) {
	var n yaml.Node
	var m manifest
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return m, err
		}
		return m, errors.New(redactYAMLError(err))
	}
	if err := checkMappings(&n); err != nil {
		return m, err
	}
	if err := n.Decode(&m); err != nil {
		return m, errors.New(redactYAMLError(err))
	}
	return m, nil
}

// quotedText matches the quoted snippets YAML errors include.
var quotedText = regexp.MustCompile("`[^`]*`|\"[^\"]*\"")

// redactYAMLError keeps the line number of a YAML error but drops quoted
// content, which could be part of a secret value.
func redactYAMLError(err error) string {
	msg := err.Error()
	return quotedText.ReplaceAllString(msg, "…")
}

func secretsOf(m manifest) ([]Secret, error) {
	switch m.Kind {
	case "List", "SecretList":
		var out []Secret
		for i, item := range m.Items {
			s, err := secretsOf(item)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out = append(out, s...)
		}
		return out, nil
	case "Secret":
	default:
		return nil, nil
	}
	if m.Metadata.Name == "" {
		return nil, fmt.Errorf("a Secret has no metadata.name")
	}
	s := Secret{Name: m.Metadata.Name, Namespace: m.Metadata.Namespace, Labels: m.Metadata.Labels, Data: map[string]string{}}
	for k, v := range m.Data {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: data.%s is not valid base64", s.Ref(), k)
		}
		s.Data[k] = string(b)
	}
	for k, v := range m.StringData {
		s.Data[k] = v
	}
	return []Secret{s}, nil
}

// FindGit picks the Kargo Git-credential Secret for repoURL the way Kargo
// does: Secrets of the project's namespace before those of the shared
// namespace (when project is empty, all Secrets form one group); within each,
// exact repoURL matches before regular expressions, and in lexical order of
// name within each kind. URLs are normalised before comparison. It returns
// ErrNone when nothing matches.
func FindGit(secrets []Secret, project, repoURL string) (Credentials, error) {
	want := NormalizeURL(repoURL)
	var groups [2][]Secret
	for _, s := range secrets {
		if s.Labels[CredTypeLabel] != CredTypeGit {
			continue
		}
		if project == "" || s.Namespace == project || s.Namespace == "" {
			groups[0] = append(groups[0], s)
		} else if s.Namespace == SharedResourcesProject {
			groups[1] = append(groups[1], s)
		}
	}
	for _, group := range groups {
		sort.SliceStable(group, func(i, j int) bool { return group[i].Name < group[j].Name })
		for _, regex := range []bool{false, true} {
			for _, s := range group {
				if isRegex(s) != regex {
					continue
				}
				ok, err := matches(s, want, regex)
				if err != nil {
					return Credentials{}, err
				}
				if ok {
					return FromGitSecret(s)
				}
			}
		}
	}
	return Credentials{}, ErrNone
}

func isRegex(s Secret) bool {
	v, _ := strconv.ParseBool(s.Data[KeyRepoURLIsRegex])
	return v
}

func matches(s Secret, normalizedURL string, regex bool) (bool, error) {
	pattern := s.Data[KeyRepoURL]
	if !regex {
		return pattern != "" && NormalizeURL(pattern) == normalizedURL, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return false, fmt.Errorf("%s: repoURL is not a valid regular expression: %v", s.Ref(), err)
	}
	return re.MatchString(normalizedURL), nil
}

// NormalizeURL makes repository URLs comparable: lower-case scheme and host,
// no trailing "/" or ".git".
func NormalizeURL(raw string) string {
	s := strings.TrimSpace(raw)
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
		u.Scheme = strings.ToLower(u.Scheme)
		u.Host = strings.ToLower(u.Host)
		s = u.String()
	}
	for {
		t := strings.TrimSuffix(strings.TrimSuffix(s, "/"), ".git")
		if t == s {
			return s
		}
		s = t
	}
}

// FromGitSecret reads a Kargo Git-credential Secret: username and password
// (a personal access token is the password), or GitHub App settings.
func FromGitSecret(s Secret) (Credentials, error) {
	c := Credentials{Source: s.Ref()}
	clientID, appID := strings.TrimSpace(s.Data[KeyAppClientID]), strings.TrimSpace(s.Data[KeyAppID])
	if clientID == "" && appID == "" {
		c.Token = strings.TrimSpace(s.Data[KeyPassword])
		if c.Token == "" {
			return Credentials{}, fmt.Errorf("%s matches the repository but has no %s (the token) and no GitHub App settings", s.Ref(), KeyPassword)
		}
		return c, nil
	}
	app := &App{ClientID: clientID}
	if clientID == "" {
		n, err := strconv.ParseInt(appID, 10, 64)
		if err != nil || n <= 0 {
			return Credentials{}, fmt.Errorf("%s: %s must be a positive integer", s.Ref(), KeyAppID)
		}
		app.AppID = n
	}
	inst, err := strconv.ParseInt(strings.TrimSpace(s.Data[KeyAppInstallationID]), 10, 64)
	if err != nil || inst <= 0 {
		return Credentials{}, fmt.Errorf("%s: %s must be a positive integer", s.Ref(), KeyAppInstallationID)
	}
	app.InstallationID = inst
	app.PrivateKeyPEM = decodePrivateKey(s.Data[KeyAppPrivateKey])
	app.KeySource = fmt.Sprintf("%s, key %s", s.Ref(), KeyAppPrivateKey)
	c.App = app
	if err := c.Validate(); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

// decodePrivateKey accepts PEM text, or the older form: PEM text encoded once
// more in base64.
func decodePrivateKey(v string) []byte {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "-----BEGIN") {
		return []byte(v + "\n")
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		return b
	}
	return []byte(v)
}

// FromLegacySecret reads the v1.8 credentials Secret named name: accessToken
// and, for GitHub Enterprise Server, baseURL and uploadURL. When project is
// set, a Secret in another namespace does not count.
func FromLegacySecret(secrets []Secret, project, name string) (Credentials, error) {
	for _, s := range secrets {
		if s.Name != name || (project != "" && s.Namespace != "" && s.Namespace != project) {
			continue
		}
		tok := strings.TrimSpace(s.Data[LegacyKeyAccessToken])
		if tok == "" {
			return Credentials{}, fmt.Errorf("%s has no %s", s.Ref(), LegacyKeyAccessToken)
		}
		return Credentials{
			Token:     tok,
			Source:    s.Ref(),
			BaseURL:   strings.TrimSpace(s.Data[LegacyKeyBaseURL]),
			UploadURL: strings.TrimSpace(s.Data[LegacyKeyUploadURL]),
		}, nil
	}
	return Credentials{}, fmt.Errorf("%w: no Secret named %q (credentials.secretName)", ErrNone, name)
}
