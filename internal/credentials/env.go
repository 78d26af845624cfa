package credentials

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Environment variable names read by FromEnv.
const (
	// EnvToken is read first, as the GitHub CLI does; EnvTokenAlt is the
	// token GitHub Actions itself provides.
	EnvToken             = "GH_TOKEN"
	EnvTokenAlt          = "GITHUB_TOKEN"
	EnvAppClientID       = "GITHUB_APP_CLIENT_ID"
	EnvAppID             = "GITHUB_APP_ID"
	EnvAppInstallationID = "GITHUB_APP_INSTALLATION_ID"
	EnvAppPrivateKey     = "GITHUB_APP_PRIVATE_KEY"
	EnvAppPrivateKeyFile = "GITHUB_APP_PRIVATE_KEY_FILE"
)

// ErrNone means no credentials were found where they were looked for.
var ErrNone = errors.New("no credentials found")

// FromEnv reads a token (GH_TOKEN, then GITHUB_TOKEN, as the GitHub CLI) or GitHub App settings
// (GITHUB_APP_CLIENT_ID or GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID, and
// GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE). It returns ErrNone
// when none of them is set.
func FromEnv(getenv func(string) string) (Credentials, error) {
	for _, name := range []string{EnvToken, EnvTokenAlt} {
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
		app.PrivateKeyPEM = []byte(key)
	case file != "":
		b, err := ReadFileLimited(file, MaxPrivateKeyBytes)
		if err != nil {
			return Credentials{}, fmt.Errorf("reading %s: %w", EnvAppPrivateKeyFile, err)
		}
		app.PrivateKeyPEM = b
	default:
		return Credentials{}, fmt.Errorf("%s or %s must be set when %s is set", EnvAppPrivateKey, EnvAppPrivateKeyFile, source)
	}
	c := Credentials{App: app, Source: source}
	return c, c.Validate()
}
