package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
)

// credentialFlags are the flags that say where credentials come from.
type credentialFlags struct {
	File    string
	Project string
}

// register adds --credentials-file and --project to a command's flags.
func (c *credentialFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&c.File, "credentials-file", "", "Kubernetes Secret manifests in Kargo's Git-credential format")
	fl.StringVar(&c.Project, "project", "", "Kargo project (namespace) whose Secrets in --credentials-file come first")
}

// lookups are the command line's credential lookups for the step layer: a
// Kargo Git-credential Secret in --credentials-file first, then the
// environment. Their errors are final: a file or variable does not fix
// itself.
type lookups struct {
	f       *Factory
	flags   credentialFlags
	secrets []credentials.Secret
}

// newLookups reads --credentials-file once.
func newLookups(f *Factory, flags credentialFlags) (*lookups, error) {
	l := &lookups{f: f, flags: flags}
	if flags.File == "" {
		return l, nil
	}
	data, err := credentials.ReadFileLimited(flags.File, credentials.MaxCredentialsFileBytes)
	if err != nil {
		return nil, failure.Final(fmt.Errorf("reading --credentials-file: %w", err))
	}
	if l.secrets, err = credentials.ParseSecrets(bytes.NewReader(data)); err != nil {
		return nil, failure.Final(fmt.Errorf("reading --credentials-file %s: %w", flags.File, err))
	}
	return l, nil
}

// git finds credentials for repoURL.
func (l *lookups) git(_ context.Context, repoURL string) (*credentials.Credentials, error) {
	host := "github.com"
	if u, err := url.Parse(repoURL); err == nil && u.Host != "" {
		host = u.Host
	}
	return l.find(host, fmt.Sprintf("no Git credentials for %s", repoURL), func() (credentials.Credentials, error) {
		return credentials.FindGit(l.secrets, l.flags.Project, repoURL)
	})
}

// legacy reads the v1.8 Secret named by credentials.secretName.
func (l *lookups) legacy(_ context.Context, secretName string) (*credentials.Credentials, error) {
	// A v1.8 Secret names its host (baseURL); the environment's token
	// stands in for github.com's.
	return l.find("github.com", fmt.Sprintf("no Secret %q (credentials.secretName)", secretName), func() (credentials.Credentials, error) {
		return credentials.FromLegacySecret(l.secrets, l.flags.Project, secretName)
	})
}

func (l *lookups) find(host, missing string, inFile func() (credentials.Credentials, error)) (*credentials.Credentials, error) {
	if len(l.secrets) > 0 {
		c, err := inFile()
		if err == nil {
			return &c, nil
		}
		if !errors.Is(err, credentials.ErrNone) {
			return nil, failure.Final(err)
		}
	}
	c, err := credentials.FromEnvFor(l.f.Getenv, host)
	if errors.Is(err, credentials.ErrNone) {
		where := "no --credentials-file was given"
		if l.flags.File != "" {
			where = missing + " in " + l.flags.File
		}
		return nil, failure.Final(fmt.Errorf("no GitHub credentials for %s: %s, and none of %s, %s/%s is set",
			host, where, strings.Join(credentials.TokenVariables(host), ", "), credentials.EnvAppClientID, credentials.EnvAppID))
	}
	if err != nil {
		return nil, failure.Final(err)
	}
	return &c, nil
}
