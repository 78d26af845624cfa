package credentials

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// Environment variable names read by FromEnv.
const (
	// EnvToken is read first, as the GitHub CLI does; EnvTokenAlt is the
	// token GitHub Actions itself provides.
	EnvToken    = "GH_TOKEN"
	EnvTokenAlt = "GITHUB_TOKEN"
	// EnvEnterpriseToken and EnvEnterpriseTokenAlt are read first for a
	// GitHub Enterprise Server host, as the GitHub CLI does.
	EnvEnterpriseToken    = "GH_ENTERPRISE_TOKEN"
	EnvEnterpriseTokenAlt = "GITHUB_ENTERPRISE_TOKEN"
	EnvAppClientID        = "GITHUB_APP_CLIENT_ID"
	EnvAppID              = "GITHUB_APP_ID"
	EnvAppInstallationID  = "GITHUB_APP_INSTALLATION_ID"
	EnvAppPrivateKey      = "GITHUB_APP_PRIVATE_KEY"
	EnvAppPrivateKeyFile  = "GITHUB_APP_PRIVATE_KEY_FILE"
)

// ErrNone means no credentials were found where they were looked for.
var ErrNone = errors.New("no credentials found")

// FromEnv reads credentials for github.com from the environment: see
// FromEnvFor.
func FromEnv(getenv func(string) string) (Credentials, error) {
	return FromEnvFor(getenv, "github.com")
}

// FromEnvFor reads credentials for the API host of host (a repository URL's
// host) from the environment: a token, in the GitHub CLI's order (for an
// Enterprise Server host GH_ENTERPRISE_TOKEN, then GITHUB_ENTERPRISE_TOKEN;
// for github.com and GHE.com GH_TOKEN, then GITHUB_TOKEN), or GitHub App
// settings (GITHUB_APP_CLIENT_ID or GITHUB_APP_ID,
// GITHUB_APP_INSTALLATION_ID, and GITHUB_APP_PRIVATE_KEY or
// GITHUB_APP_PRIVATE_KEY_FILE). Unlike the GitHub CLI, an Enterprise host
// with neither Enterprise variable set takes GH_TOKEN or GITHUB_TOKEN: a
// one-host setup (a CI job against its own GHES) keeps working. It
// returns ErrNone when none of them is set.
func FromEnvFor(getenv func(string) string, host string) (Credentials, error) {
	for _, name := range TokenVariables(host) {
		if tok := strings.TrimSpace(getenv(name)); tok != "" {
			return Credentials{Token: tok, Source: name}, nil
		}
	}
	clientID, appID := strings.TrimSpace(getenv(EnvAppClientID)), strings.TrimSpace(getenv(EnvAppID))
	if clientID == "" && appID == "" {
		return Credentials{}, ErrNone
	}
	app := &App{ClientID: clientID}
	source := EnvAppClientID
	if clientID == "" {
		source = EnvAppID
		n, err := strconv.ParseInt(appID, 10, 64)
		if err != nil || n <= 0 {
			return Credentials{}, fmt.Errorf("%s must be a positive integer", EnvAppID)
		}
		app.AppID = n
	}
	inst, err := strconv.ParseInt(strings.TrimSpace(getenv(EnvAppInstallationID)), 10, 64)
	if err != nil || inst <= 0 {
		return Credentials{}, fmt.Errorf("%s must be set to the installation's positive integer ID when %s is set", EnvAppInstallationID, source)
	}
	app.InstallationID = inst
	switch key, file := getenv(EnvAppPrivateKey), getenv(EnvAppPrivateKeyFile); {
	case key != "":
		app.PrivateKeyPEM, app.KeySource = []byte(key), EnvAppPrivateKey
	case file != "":
		b, err := ReadFileLimited(file, MaxPrivateKeyBytes)
		if err != nil {
			return Credentials{}, fmt.Errorf("reading %s: %w", EnvAppPrivateKeyFile, err)
		}
		app.PrivateKeyPEM, app.KeySource = b, fmt.Sprintf("%s (%s)", EnvAppPrivateKeyFile, file)
	default:
		return Credentials{}, fmt.Errorf("%s or %s must be set when %s is set", EnvAppPrivateKey, EnvAppPrivateKeyFile, source)
	}
	c := Credentials{App: app, Source: source}
	return c, c.Validate()
}

// TokenVariables are the token variables read for host, in order.
func TokenVariables(host string) []string {
	if repourl.EnterpriseHost(host) {
		return []string{EnvEnterpriseToken, EnvEnterpriseTokenAlt, EnvToken, EnvTokenAlt}
	}
	return []string{EnvToken, EnvTokenAlt}
}
