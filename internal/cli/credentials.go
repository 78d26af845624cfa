package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/kargo-gha/kargo-gha/pkg/config"
	"github.com/kargo-gha/kargo-gha/pkg/credentials"
	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
	"github.com/kargo-gha/kargo-gha/pkg/repourl"
)

// stepClient returns the GitHub client for either step's configuration:
// repository and credentials resolved, and for the v1.8 format the
// deprecation warning printed with current(repoURL), the equivalent
// current-format configuration.
func stepClient(f *Factory, flags credentialFlags, repoURL string, legacy *config.Legacy, insecure bool, urlOpts repourl.Options,
	current func(repoURL string) map[string]any) (*ghclient.Client, credentials.Credentials, error) {
	repo, creds, err := resolveTarget(f, flags, repoURL, legacy, urlOpts)
	if err != nil {
		return nil, creds, err
	}
	if legacy != nil {
		warnLegacy(f, current(repo.WebURL()))
	}
	client, err := f.Pool.Client(repo, creds, insecure)
	if err != nil {
		return nil, creds, failure.Final(err)
	}
	return client, creds, nil
}

// resolveTarget finds the repository and credentials of either step: from
// repoURL (current format), or from the v1.8 fields and their Secret, whose
// baseURL says which host serves the repository.
func resolveTarget(f *Factory, flags credentialFlags, repoURL string, legacy *config.Legacy, urlOpts repourl.Options) (repourl.Repository, credentials.Credentials, error) {
	if legacy == nil {
		repo, err := repourl.Parse(repoURL, urlOpts)
		if err != nil {
			return repo, credentials.Credentials{}, failure.Final(err)
		}
		creds, err := resolveCredentials(f, flags, repoURL)
		return repo, creds, err
	}
	creds, err := resolveLegacyCredentials(f, flags, legacy.SecretName)
	if err != nil {
		return repourl.Repository{}, creds, err
	}
	repo, err := repourl.FromLegacy(legacy.Owner, legacy.Repo, creds.BaseURL, urlOpts)
	if err != nil {
		return repo, creds, failure.Final(fmt.Errorf("credentials.secretName %q: %w", legacy.SecretName, err))
	}
	return repo, creds, nil
}

// credentialFlags are the flags that say where credentials come from.
type credentialFlags struct {
	File    string
	Project string
}

// loadSecrets reads the --credentials-file manifests, or nothing.
func (c credentialFlags) loadSecrets() ([]credentials.Secret, error) {
	if c.File == "" {
		return nil, nil
	}
	fh, err := os.Open(c.File)
	if err != nil {
		return nil, failure.Final(fmt.Errorf("reading --credentials-file: %w", err))
	}
	defer fh.Close()
	secrets, err := credentials.ParseSecrets(fh)
	if err != nil {
		return nil, failure.Final(fmt.Errorf("reading --credentials-file %s: %w", c.File, err))
	}
	return secrets, nil
}

// resolveCredentials takes the first that applies: a Kargo Git-credential
// Secret for repoURL in --credentials-file, GITHUB_TOKEN or GH_TOKEN, then
// the GITHUB_APP_* variables.
func resolveCredentials(f *Factory, flags credentialFlags, repoURL string) (credentials.Credentials, error) {
	return resolve(f, flags, fmt.Sprintf("no Git credentials for %s", repoURL), func(secrets []credentials.Secret) (credentials.Credentials, error) {
		return credentials.FindGit(secrets, flags.Project, repoURL)
	})
}

// resolveLegacyCredentials reads the v1.8 Secret named by
// credentials.secretName, falling back to the environment.
func resolveLegacyCredentials(f *Factory, flags credentialFlags, secretName string) (credentials.Credentials, error) {
	return resolve(f, flags, fmt.Sprintf("no Secret %q (credentials.secretName)", secretName), func(secrets []credentials.Secret) (credentials.Credentials, error) {
		return credentials.FromLegacySecret(secrets, flags.Project, secretName)
	})
}

// resolve looks in --credentials-file with find, then in the environment;
// missing says what the file lacked, for the error when nothing is found.
func resolve(f *Factory, flags credentialFlags, missing string, find func([]credentials.Secret) (credentials.Credentials, error)) (credentials.Credentials, error) {
	secrets, err := flags.loadSecrets()
	if err != nil {
		return credentials.Credentials{}, err
	}
	if len(secrets) > 0 {
		c, err := find(secrets)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, credentials.ErrNone) {
			return credentials.Credentials{}, failure.Final(err)
		}
	}
	return envCredentials(f, missing, flags)
}

func envCredentials(f *Factory, missing string, flags credentialFlags) (credentials.Credentials, error) {
	c, err := credentials.FromEnv(f.Getenv)
	if errors.Is(err, credentials.ErrNone) {
		where := "no --credentials-file was given"
		if flags.File != "" {
			where = missing + " in " + flags.File
		}
		return c, failure.Final(fmt.Errorf("no GitHub credentials: %s, and none of %s, %s, %s/%s is set",
			where, credentials.EnvToken, credentials.EnvTokenAlt, credentials.EnvAppClientID, credentials.EnvAppID))
	}
	if err != nil {
		return c, failure.Final(err)
	}
	return c, nil
}
