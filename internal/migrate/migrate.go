// Package migrate moves gha-dispatch-workflow and gha-wait-for-workflow
// steps in Kargo manifests from the v1.8 configuration (owner, repo,
// credentials) to the current one (repoURL). It edits the text, line by
// line, so that everything it does not migrate (comments, key order,
// quoting, expressions, other documents and steps) stays byte for byte.
package migrate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// StepNames are the steps this package migrates.
var StepNames = map[string]bool{"gha-dispatch-workflow": true, "gha-wait-for-workflow": true}

// Options adjust a migration.
type Options struct {
	// BaseURLs maps each known v1.8 credentials Secret name to its baseURL
	// ("" for github.com). A step whose Secret is not listed is left alone
	// with a problem, since its host is unknown, unless AssumeGitHubCom.
	BaseURLs map[string]string
	// AssumeGitHubCom takes github.com for Secrets not in BaseURLs.
	AssumeGitHubCom bool
}

// Change is one step migrated.
type Change struct {
	Line       int // 1-based line of the step's config
	Step       string
	Alias      string
	RepoURL    string
	SecretName string
}

// Problem is a step that cannot be migrated mechanically; it is left as is.
type Problem struct {
	Line   int
	Step   string
	Alias  string
	Reason string
}

func (p Problem) String() string {
	name := p.Step
	if p.Alias != "" {
		name += " " + p.Alias
	}
	return fmt.Sprintf("line %d: cannot migrate %s: %s; left unchanged", p.Line, name, p.Reason)
}

// Result is the outcome for one file.
type Result struct {
	Output   []byte
	Changes  []Change
	Problems []Problem
}

// edit replaces lines [from, to) (0-based) with repl.
type edit struct {
	from, to int
	repl     []string
}

// File migrates one file's worth of YAML documents.
func File(src []byte, opts Options) (*Result, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	lines := splitLines(src)
	res := &Result{}
	var edits []edit
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not valid YAML: %w", err)
		}
		for _, step := range stepsOf(&doc) {
			e, change, problem := migrateStep(step, lines, opts)
			switch {
			case problem != nil:
				res.Problems = append(res.Problems, *problem)
			case change != nil:
				res.Changes = append(res.Changes, *change)
				edits = append(edits, e...)
			}
		}
	}
	res.Output = apply(lines, edits)
	return res, nil
}

// stepsOf finds the step mappings of a Stage's promotion template, a
// PromotionTask or a ClusterPromotionTask.
func stepsOf(doc *yaml.Node) []*yaml.Node {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	var path []string
	switch scalar(get(root, "kind")) {
	case "Stage":
		path = []string{"spec", "promotionTemplate", "spec", "steps"}
	case "PromotionTask", "ClusterPromotionTask":
		path = []string{"spec", "steps"}
	default:
		return nil
	}
	n := root
	for _, k := range path {
		if n = get(n, k); n == nil {
			return nil
		}
	}
	if n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// migrateStep plans the edits for one step, or says why it cannot.
func migrateStep(step *yaml.Node, lines []string, opts Options) ([]edit, *Change, *Problem) {
	uses := scalar(get(step, "uses"))
	if !StepNames[uses] {
		return nil, nil, nil
	}
	cfg := get(step, "config")
	if cfg == nil || cfg.Kind != yaml.MappingNode {
		return nil, nil, nil
	}
	owner, repo, creds := get(cfg, "owner"), get(cfg, "repo"), get(cfg, "credentials")
	if owner == nil && repo == nil && creds == nil {
		return nil, nil, nil // already current
	}
	alias := scalar(get(step, "as"))
	problem := func(reason string) *Problem {
		return &Problem{Line: cfg.Line, Step: uses, Alias: alias, Reason: reason}
	}
	switch {
	case cfg.Style&yaml.FlowStyle != 0:
		return nil, nil, problem("its config is a flow-style mapping ({...}); rewrite it by hand")
	case get(cfg, "repoURL") != nil:
		return nil, nil, problem("it has both repoURL and v1.8 fields; remove owner, repo and credentials by hand")
	case owner == nil || repo == nil:
		return nil, nil, problem("it lacks owner or repo")
	case owner.Kind != yaml.ScalarNode || repo.Kind != yaml.ScalarNode:
		return nil, nil, problem("owner or repo is not a plain value")
	case strings.Contains(owner.Value, "${{") || strings.Contains(repo.Value, "${{"):
		return nil, nil, problem("owner or repo is an expression; write repoURL as an expression yourself, e.g. https://github.com/${{ vars.owner }}/${{ vars.repo }}")
	}
	secret := scalar(get(creds, "secretName"))
	base, known := opts.BaseURLs[secret]
	if !known && !opts.AssumeGitHubCom {
		return nil, nil, problem(fmt.Sprintf("its credentials Secret %q is unknown, so is its host (an Enterprise Server Secret has a baseURL): give the Secrets with --credentials-file, or --github-com if they are all for github.com", secret))
	}
	// The steps' own mapping, so that repoURL names the repository the v1.8
	// configuration did. Plain http is kept as the Secret says: whether it
	// is allowed is decided where the step runs, as it was for v1.8.
	target, err := repourl.FromLegacy(owner.Value, repo.Value, base, repourl.Options{AllowHTTP: true})
	if err != nil {
		return nil, nil, problem(fmt.Sprintf("owner, repo and the baseURL of Secret %q make no repository URL: %v", secret, err))
	}
	repoURL := target.WebURL()

	// The edit: the owner entry becomes repoURL, the repo and credentials
	// entries go. Each entry spans its key's line to the next entry.
	spans := map[string][2]int{}
	for i := 0; i+1 < len(cfg.Content); i += 2 {
		k := cfg.Content[i]
		if k.Value != "owner" && k.Value != "repo" && k.Value != "credentials" {
			continue
		}
		start := k.Line - 1
		if !ownsLine(lines[start], k.Column) {
			return nil, nil, problem("its " + k.Value + " entry shares a line with something else; rewrite it by hand")
		}
		spans[k.Value] = [2]int{start, entryEnd(cfg, i, lines)}
	}
	ownerLine := lines[spans["owner"][0]]
	indent := ownerLine[:indentOf(ownerLine)-1]
	eol := lineEnding(ownerLine)
	var edits []edit
	for key, sp := range spans {
		var repl []string
		if key == "owner" {
			repl = []string{indent + "repoURL: " + repoURL + eol}
		}
		edits = append(edits, edit{from: sp[0], to: sp[1], repl: repl})
	}
	return edits, &Change{Line: cfg.Line, Step: uses, Alias: alias, RepoURL: repoURL, SecretName: secret}, nil
}

// entryEnd is the 0-based line after the entry whose key is cfg.Content[i]:
// the next entry's key line, or, for the last entry, the end of the lines
// indented deeper than the key (comments and blank lines that follow stay).
func entryEnd(cfg *yaml.Node, i int, lines []string) int {
	key := cfg.Content[i]
	if i+2 < len(cfg.Content) {
		next := cfg.Content[i+2].Line - 1
		// Keep comments and blank lines that sit just above the next key.
		for next-1 > key.Line-1 && isBlankOrComment(lines[next-1]) {
			next--
		}
		return next
	}
	end := key.Line
	for end < len(lines) {
		l := lines[end]
		if isBlankOrComment(l) || indentOf(l) < key.Column {
			break
		}
		end++
	}
	return end
}

// ownsLine reports whether the key at column (1-based) is the first thing
// on its line, as in a block mapping.
func ownsLine(line string, column int) bool {
	return column-1 <= len(line) && strings.TrimLeft(line[:column-1], " ") == ""
}

func isBlankOrComment(l string) bool {
	t := strings.TrimSpace(l)
	return t == "" || strings.HasPrefix(t, "#")
}

func indentOf(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) + 1 }

func lineEnding(l string) string {
	switch {
	case strings.HasSuffix(l, "\r\n"):
		return "\r\n"
	case strings.HasSuffix(l, "\n"):
		return "\n"
	}
	return "\n"
}

// splitLines keeps each line's ending, so joining them gives src back.
func splitLines(src []byte) []string {
	var out []string
	for len(src) > 0 {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			out = append(out, string(src))
			break
		}
		out = append(out, string(src[:i+1]))
		src = src[i+1:]
	}
	return out
}

func apply(lines []string, edits []edit) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].from > edits[j].from })
	out := append([]string(nil), lines...)
	for _, e := range edits {
		out = append(out[:e.from], append(append([]string(nil), e.repl...), out[e.to:]...)...)
	}
	return []byte(strings.Join(out, ""))
}
