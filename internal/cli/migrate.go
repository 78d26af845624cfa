package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	Stdout          bool
}

// stdinPath is the argument that reads one manifest from stdin, and the
// name it is given in messages and diff headers.
const (
	stdinPath = "-"
	stdinName = "stdin"
)

// NewCmdMigrate builds `kargo-gha migrate`.
func NewCmdMigrate(f *Factory, runF func(context.Context, *MigrateOptions) error) *cobra.Command {
	opts := &MigrateOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "migrate FILE|DIR...|-",
		Short: "Move v1.8 gha-* step configurations (owner, repo, credentials) to the current format (repoURL)",
		Long: `Find every gha-dispatch-workflow and gha-wait-for-workflow step in Kargo
manifests (Stage promotion templates, PromotionTask, ClusterPromotionTask;
several documents per file; directories walked for .yaml and .yml) and rewrite
v1.8 configurations: owner and repo become repoURL, credentials goes. Nothing
else changes: comments, key order, quoting, expressions and other documents
stay byte for byte.

The host of each repoURL comes from the v1.8 Secret's baseURL, so give the
Secrets with --credentials-file. A step's Secret is the one of its name in
the Stage's or PromotionTask's own namespace (metadata.namespace), as v1.8
looked it up; a ClusterPromotionTask's is every namespace's Secret of that
name, taken only when they all name one host. A step whose Secret is
missing in its namespace, or there twice, is left alone and named (file,
line, document, manifest, step, the Secret looked for and where). A step
whose Secret name is in no namespace of the file is left alone too, unless
--github-com says it is on github.com.

By default a unified diff is printed (on stderr with --emit-credentials); --write rewrites the files (atomically);
--stdout prints the migrated manifest instead of a diff;
--check exits 1 when anything would change or needs a hand. Steps that cannot
be migrated mechanically (an expression in owner, a flow-style config) are
reported with file and line and left alone.

"-" reads one manifest from stdin; its diff or (--stdout) migrated manifest
goes to stdout, and --write is refused.

The v1.8 Secrets (accessToken, baseURL) are replaced by Kargo Git-credential
Secrets: --credentials-file reads the old ones (their baseURL decides the
host of repoURL) and --emit-credentials prints the new ones, with the token
hidden unless --show-secrets.`,
		Example: `  kargo-gha migrate --credentials-file secrets.yaml ./kargo/           # review the diff
  kargo-gha migrate --credentials-file secrets.yaml --write ./kargo/   # apply it
  kargo-gha migrate --github-com --check ./kargo/    # in CI: fail while v1.8 configs remain
  kargo-gha migrate --credentials-file secrets.yaml --emit-credentials ./kargo/ > git-credentials.yaml
  helm template ./chart | kargo-gha migrate --credentials-file secrets.yaml --stdout - | kubectl apply -f -`,
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
	fl.BoolVar(&opts.GitHubCom, "github-com", false, "take github.com for steps whose credentials Secret name is in no namespace of --credentials-file (without it they are left alone)")
	fl.BoolVar(&opts.Stdout, "stdout", false, "print the migrated manifest instead of a diff (one FILE, or -)")
	return cmd
}

// errNeedsAttention makes --check fail without another message.
var errNeedsAttention = errors.New("v1.8 configurations remain")

func runMigrate(o *MigrateOptions) error {
	f := o.Factory
	if err := checkMigrateFlags(o); err != nil {
		return err
	}
	legacy, err := legacySecrets(o.CredentialsFile)
	if err != nil {
		return err
	}
	opts := migrate.Options{AssumeGitHubCom: o.GitHubCom}
	for _, s := range legacy {
		opts.Secrets = append(opts.Secrets, migrate.Secret{
			SecretRef: migrate.SecretRef{Namespace: s.Namespace, Name: s.Name},
			BaseURL:   s.Data[credentials.LegacyKeyBaseURL],
		})
	}
	// With --emit-credentials stdout carries the Secrets alone, so that it
	// can be redirected to a file; the diff goes to stderr.
	diffOut := f.IO.Out
	if o.EmitCredentials {
		diffOut = f.IO.ErrOut
	}
	var files []string
	if o.Paths[0] == stdinPath {
		files = []string{stdinPath}
	} else if files, err = manifestFiles(o.Paths); err != nil {
		return err
	}
	if o.Stdout && len(files) != 1 {
		// Manifests printed one after another would be one stream whose
		// file boundaries are lost.
		return failure.Final(fmt.Errorf("--stdout prints one migrated manifest, and %s holds %d files: give one FILE or -", strings.Join(o.Paths, " "), len(files)))
	}
	changed, problems, failed := 0, 0, 0
	used := map[migrate.SecretRef]map[string]bool{} // Secret -> repoURLs
	for _, path := range files {
		src, name, err := readManifest(f, path)
		if err != nil {
			return err
		}
		res, err := migrate.File(src, opts)
		if err != nil {
			progress(f, "%s: %v", name, err)
			failed++
			continue
		}
		for _, p := range res.Problems {
			progress(f, "%s:%s", name, strings.TrimPrefix(p.String(), "line "))
		}
		problems += len(res.Problems)
		recordSecrets(used, res.Changes)
		if o.Stdout {
			if _, err := f.IO.Out.Write(res.Output); err != nil {
				return failure.Final(fmt.Errorf("writing stdout: %w", err))
			}
		}
		if len(res.Changes) == 0 {
			continue
		}
		changed++
		switch {
		case o.Check:
			progress(f, "%s: %d step(s) in the v1.8 format", name, len(res.Changes))
		case o.Write:
			if err := writeAtomically(path, res.Output); err != nil {
				return failure.Final(fmt.Errorf("writing %s: %w", path, err))
			}
			progress(f, "%s: migrated %d step(s)", name, len(res.Changes))
		case o.Stdout:
		default:
			if err := writeUnifiedDiff(diffOut, name, src, res.Edits); err != nil {
				return failure.Final(fmt.Errorf("writing the diff: %w", err))
			}
		}
	}
	if o.EmitCredentials {
		emitGitCredentials(f, legacy, used, o.ShowSecrets)
	}
	progress(f, "%d file(s) read, %d with v1.8 steps, %d step(s) to migrate by hand, %d unreadable", len(files), changed, problems, failed)
	if failed > 0 {
		return failure.Final(fmt.Errorf("%d file(s) could not be read as YAML", failed))
	}
	if o.Check && (changed > 0 || problems > 0) {
		return failure.Final(errNeedsAttention)
	}
	return nil
}

// checkMigrateFlags refuses combinations that cannot be done, before
// anything is read.
func checkMigrateFlags(o *MigrateOptions) error {
	stdin := false
	for _, p := range o.Paths {
		stdin = stdin || p == stdinPath
	}
	switch {
	case o.Write && o.Check:
		return failure.Final(errors.New("use either --write or --check, not both"))
	case o.Stdout && (o.Write || o.Check):
		return failure.Final(errors.New("--stdout prints the migrated manifest: use it without --write and --check"))
	case o.Stdout && o.EmitCredentials:
		return failure.Final(errors.New("--stdout and --emit-credentials both print on stdout: run migrate once with each"))
	case stdin && len(o.Paths) > 1:
		return failure.Final(errors.New(`"-" reads one manifest from stdin: give it alone, without FILE or DIR arguments`))
	case stdin && o.Write:
		return failure.Final(errors.New(`--write rewrites files in place, and "-" (stdin) is not a file: leave out --write to print a diff on stdout, or use --stdout to print the migrated manifest`))
	}
	return nil
}

// readManifest reads a manifest file or, for "-", stdin, either bounded
// by maxManifestBytes; name is what messages call it.
func readManifest(f *Factory, path string) (src []byte, name string, err error) {
	name, r := path, io.Reader(nil)
	if path == stdinPath {
		name, r = stdinName, f.IO.In
	} else {
		fh, err := os.Open(path)
		if err != nil {
			return nil, "", failure.Final(err)
		}
		defer fh.Close()
		r = fh
	}
	src, err = io.ReadAll(io.LimitReader(r, maxManifestBytes+1))
	if err != nil {
		return nil, "", failure.Final(fmt.Errorf("reading %s: %w", name, err))
	}
	if len(src) > maxManifestBytes {
		return nil, "", failure.Final(fmt.Errorf("%s is larger than %d MiB, more than a manifest this command reads", name, maxManifestBytes>>20))
	}
	return src, name, nil
}

// recordSecrets notes, for --emit-credentials, which repoURLs each v1.8
// Secret served. A step migrated on the --github-com assumption relied on
// no Secret of the file: it is keyed by its Secret's name alone.
func recordSecrets(used map[migrate.SecretRef]map[string]bool, changes []migrate.Change) {
	for _, c := range changes {
		refs := c.Secrets
		if len(refs) == 0 {
			refs = []migrate.SecretRef{{Name: c.SecretName}}
		}
		for _, ref := range refs {
			if used[ref] == nil {
				used[ref] = map[string]bool{}
			}
			used[ref][c.RepoURL] = true
		}
	}
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
	// A v1.8 step's Secret is in its project's namespace: a Secret of no
	// namespace would match every step, or none, and either is a guess.
	for _, s := range secrets {
		if s.Namespace == "" {
			return nil, failure.Final(fmt.Errorf("--credentials-file %s: Secret %s has no metadata.namespace: migrate matches each step's Secret by namespace and name, so add its project's namespace", path, s.Name))
		}
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
// the Git-credential Secret that replaces it, in the same namespace. The
// token is replaced by a placeholder unless showSecrets, so that it does
// not land in a terminal's scrollback or a CI log by accident.
func emitGitCredentials(f *Factory, legacy []credentials.Secret, used map[migrate.SecretRef]map[string]bool, showSecrets bool) {
	refs := make([]migrate.SecretRef, 0, len(used))
	for r := range used {
		refs = append(refs, r)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	for _, ref := range refs {
		urls := sortedKeys(used[ref])
		src := legacySecret(legacy, ref)
		if src == nil {
			progress(f, "Secret %q is not in --credentials-file: create a Git-credential Secret for %s yourself, in the namespace of each project that uses it", ref.Name, strings.Join(urls, ", "))
			continue
		}
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
		out, err := kubernetesYAML(gitCredentialSecret{
			APIVersion: "v1", Kind: "Secret",
			Metadata:   secretMeta{Name: ref.Name + "-git", Namespace: src.Namespace, Labels: map[string]string{credentials.CredTypeLabel: credentials.CredTypeGit}},
			StringData: data,
		})
		if err != nil {
			progress(f, "Secret %s: %v", ref, err)
			continue
		}
		fmt.Fprintf(f.IO.Out, "---\n# Replaces the v1.8 Secret %s for %s.\n%s", ref, strings.Join(urls, ", "), out)
	}
}

// legacySecret is the v1.8 Secret ref names; migrate already refused a
// step whose Secret is in its namespace twice, so the first is the one.
func legacySecret(legacy []credentials.Secret, ref migrate.SecretRef) *credentials.Secret {
	for i := range legacy {
		if legacy[i].Namespace == ref.Namespace && legacy[i].Name == ref.Name {
			return &legacy[i]
		}
	}
	return nil
}

// kubernetesYAML encodes v as kubectl and Kubernetes' docs write manifests:
// two-space indentation (yaml.Marshal's default is four).
func kubernetesYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
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
