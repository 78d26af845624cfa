package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/migrate"
)

// maxManifestBytes skips files too large to be hand-written manifests.
const maxManifestBytes = 8 << 20

// MigrateOptions are the inputs of `kargo-gha migrate`.
type MigrateOptions struct {
	Factory         *Factory
	Paths           []string
	Write           bool
	Check           bool
	CredentialsFile string
	EmitCredentials bool
	ShowSecrets     bool
	GitHubCom       bool
}

// NewCmdMigrate builds `kargo-gha migrate`.
func NewCmdMigrate(f *Factory, runF func(context.Context, *MigrateOptions) error) *cobra.Command {
	opts := &MigrateOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "migrate FILE|DIR...",
		Short: "Move v1.8 gha-* step configurations (owner, repo, credentials) to the current format (repoURL)",
		Long: `Find every gha-dispatch-workflow and gha-wait-for-workflow step in Kargo
manifests (Stage promotion templates, PromotionTask, ClusterPromotionTask;
several documents per file; directories walked for .yaml and .yml) and rewrite
v1.8 configurations: owner and repo become repoURL, credentials goes. Nothing
else changes: comments, key order, quoting, expressions and other documents
stay byte for byte.

The host of each repoURL comes from the v1.8 Secret's baseURL, so give the
Secrets with --credentials-file; a step whose Secret is not there is left
alone (with a note) unless --github-com says it is on github.com.

By default a unified diff is printed (on stderr with --emit-credentials); --write rewrites the files (atomically);
--check exits 1 when anything would change or needs a hand. Steps that cannot
be migrated mechanically (an expression in owner, a flow-style config) are
reported with file and line and left alone.

The v1.8 Secrets (accessToken, baseURL) are replaced by Kargo Git-credential
Secrets: --credentials-file reads the old ones (their baseURL decides the
host of repoURL) and --emit-credentials prints the new ones, with the token
hidden unless --show-secrets.`,
		Example: `  kargo-gha migrate --credentials-file secrets.yaml ./kargo/           # review the diff
  kargo-gha migrate --credentials-file secrets.yaml --write ./kargo/   # apply it
  kargo-gha migrate --github-com --check ./kargo/    # in CI: fail while v1.8 configs remain
  kargo-gha migrate --credentials-file secrets.yaml --emit-credentials ./kargo/ > git-credentials.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Paths = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runMigrate(opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Write, "write", false, "rewrite the files in place instead of printing a diff")
	fl.BoolVar(&opts.Check, "check", false, "print nothing to change; exit 1 when anything would change or cannot be migrated")
	fl.StringVar(&opts.CredentialsFile, "credentials-file", "", "the v1.8 credentials Secrets (their baseURL gives the repoURL host)")
	fl.BoolVar(&opts.EmitCredentials, "emit-credentials", false, "print the Kargo Git-credential Secrets that replace the v1.8 ones")
	fl.BoolVar(&opts.ShowSecrets, "show-secrets", false, "with --emit-credentials, print the tokens instead of a placeholder")
	fl.BoolVar(&opts.GitHubCom, "github-com", false, "take github.com for steps whose credentials Secret is not in --credentials-file (without it they are left alone)")
	return cmd
}

// errNeedsAttention makes --check fail without another message.
var errNeedsAttention = errors.New("v1.8 configurations remain")

func runMigrate(o *MigrateOptions) error {
	f := o.Factory
	if o.Write && o.Check {
		return failure.Final(errors.New("use either --write or --check, not both"))
	}
	legacy, err := legacySecrets(o.CredentialsFile)
	if err != nil {
		return err
	}
	opts := migrate.Options{BaseURLs: map[string]string{}, AssumeGitHubCom: o.GitHubCom}
	for _, s := range legacy {
		opts.BaseURLs[s.Name] = s.Data[credentials.LegacyKeyBaseURL]
	}
	// With --emit-credentials stdout carries the Secrets alone, so that it
	// can be redirected to a file; the diff goes to stderr.
	diffOut := f.IO.Out
	if o.EmitCredentials {
		diffOut = f.IO.ErrOut
	}
	files, err := manifestFiles(o.Paths)
	if err != nil {
		return err
	}
	changed, problems, failed := 0, 0, 0
	used := map[string]map[string]bool{} // Secret name -> repoURLs
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			return failure.Final(err)
		}
		res, err := migrate.File(src, opts)
		if err != nil {
			fmt.Fprintf(f.IO.ErrOut, "%s: %v\n", path, err)
			failed++
			continue
		}
		for _, p := range res.Problems {
			fmt.Fprintf(f.IO.ErrOut, "%s:%s\n", path, strings.TrimPrefix(p.String(), "line "))
		}
		problems += len(res.Problems)
		for _, c := range res.Changes {
			if used[c.SecretName] == nil {
				used[c.SecretName] = map[string]bool{}
			}
			used[c.SecretName][c.RepoURL] = true
		}
		if len(res.Changes) == 0 {
			continue
		}
		changed++
		switch {
		case o.Check:
			fmt.Fprintf(f.IO.ErrOut, "%s: %d step(s) in the v1.8 format\n", path, len(res.Changes))
		case o.Write:
			if err := writeAtomically(path, res.Output); err != nil {
				return failure.Final(fmt.Errorf("writing %s: %w", path, err))
			}
			fmt.Fprintf(f.IO.ErrOut, "%s: migrated %d step(s)\n", path, len(res.Changes))
		default:
			fmt.Fprint(diffOut, unifiedDiff(path, lines(src), lines(res.Output)))
		}
	}
	if o.EmitCredentials {
		emitGitCredentials(f, legacy, used, o.ShowSecrets)
	}
	fmt.Fprintf(f.IO.ErrOut, "%d file(s) read, %d with v1.8 steps, %d step(s) to migrate by hand, %d unreadable\n", len(files), changed, problems, failed)
	if failed > 0 {
		return failure.Final(fmt.Errorf("%d file(s) could not be read as YAML", failed))
	}
	if o.Check && (changed > 0 || problems > 0) {
		return failure.Final(errNeedsAttention)
	}
	return nil
}

func lines(b []byte) []string {
	var out []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// manifestFiles expands directories into their .yaml and .yml files, in a
// stable order, skipping hidden directories (.git).
func manifestFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, failure.Final(err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
				if fi, err := d.Info(); err == nil && fi.Size() <= maxManifestBytes {
					files = append(files, path)
				}
			}
			return nil
		})
		if err != nil {
			return nil, failure.Final(err)
		}
	}
	sort.Strings(files)
	return files, nil
}

func legacySecrets(path string) ([]credentials.Secret, error) {
	if path == "" {
		return nil, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, failure.Final(fmt.Errorf("reading --credentials-file: %w", err))
	}
	defer fh.Close()
	secrets, err := credentials.ParseSecrets(fh)
	if err != nil {
		return nil, failure.Final(fmt.Errorf("reading --credentials-file %s: %w", path, err))
	}
	return secrets, nil
}

// writeAtomically replaces path with data, keeping its mode: a reader sees
// the old file or the new one, never half of one.
func writeAtomically(path string, data []byte) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// gitCredentialSecret is the Kargo Git-credential Secret manifest.
type gitCredentialSecret struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   secretMeta        `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
}

type secretMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace,omitempty"`
	Labels    map[string]string `yaml:"labels"`
}

// emitGitCredentials prints, for each v1.8 Secret the migrated steps used,
// the Git-credential Secret that replaces it. The token is replaced by a
// placeholder unless showSecrets, so that it does not land in a terminal's
// scrollback or a CI log by accident.
func emitGitCredentials(f *Factory, legacy []credentials.Secret, used map[string]map[string]bool, showSecrets bool) {
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		var src *credentials.Secret
		for i := range legacy {
			if legacy[i].Name == name {
				src = &legacy[i]
			}
		}
		if src == nil {
			fmt.Fprintf(f.IO.ErrOut, "Secret %q is not in --credentials-file: create a Git-credential Secret for %s yourself\n", name, strings.Join(sortedKeys(used[name]), ", "))
			continue
		}
		urls := sortedKeys(used[name])
		data := map[string]string{credentials.KeyUsername: "kargo"}
		if len(urls) == 1 {
			data[credentials.KeyRepoURL] = urls[0]
		} else {
			quoted := make([]string, len(urls))
			for i, u := range urls {
				quoted[i] = regexpQuote(u)
			}
			data[credentials.KeyRepoURL] = "^(" + strings.Join(quoted, "|") + ")$"
			data[credentials.KeyRepoURLIsRegex] = "true"
		}
		token := src.Data[credentials.LegacyKeyAccessToken]
		data[credentials.KeyPassword] = fmt.Sprintf("REPLACE_WITH_THE_TOKEN (%d characters; rerun with --show-secrets to print it)", len(token))
		if showSecrets {
			data[credentials.KeyPassword] = token
		}
		out, _ := yaml.Marshal(gitCredentialSecret{
			APIVersion: "v1", Kind: "Secret",
			Metadata:   secretMeta{Name: name + "-git", Namespace: src.Namespace, Labels: map[string]string{credentials.CredTypeLabel: credentials.CredTypeGit}},
			StringData: data,
		})
		fmt.Fprintf(f.IO.Out, "---\n# Replaces the v1.8 Secret %q for %s.\n%s", name, strings.Join(urls, ", "), out)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
