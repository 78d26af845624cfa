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

	"github.com/kargo-gha/kargo-gha/internal/yamlnode"
)

// StepNames are the steps this package migrates.
var StepNames = map[string]bool{"gha-dispatch-workflow": true, "gha-wait-for-workflow": true}

// Options adjust a migration.
type Options struct {
	// Secrets are the known v1.8 credentials Secrets. A step's Secret is
	// looked up by its manifest's namespace and the step's secretName: in
	// v1.8 the Secret is "in the project namespace", the namespace of the
	// Stage or PromotionTask. A step whose Secret is missing there, or
	// there twice, is left alone with a problem.
	Secrets []Secret
	// AssumeGitHubCom takes github.com for a Secret whose name is in no
	// namespace of Secrets (a name known elsewhere is still a problem).
	AssumeGitHubCom bool
}

// Secret is what a migration needs of a v1.8 credentials Secret.
type Secret struct {
	SecretRef
	BaseURL string // "" for github.com
}

// SecretRef names a Secret.
type SecretRef struct {
	Namespace, Name string
}

func (r SecretRef) String() string { return r.Namespace + "/" + r.Name }

// Change is one step migrated.
type Change struct {
	Line    int // 1-based line of the step's config
	Step    string
	Alias   string
	RepoURL string
	// Secrets are the v1.8 Secrets whose baseURL gave RepoURL's host: one
	// for a Stage or PromotionTask, every namespace's Secret of that name
	// for a ClusterPromotionTask; none when github.com was assumed.
	Secrets    []SecretRef
	SecretName string
}

// Problem is a step that cannot be migrated mechanically; it is left as is.
type Problem struct {
	Line     int    // 1-based line of the step's config
	Document int    // 1-based document of the file
	Resource string // e.g. "Stage team-a/uat"
	StepNum  int    // 1-based position in its steps
	Step     string
	Alias    string
	Reason   string
}

func (p Problem) String() string {
	name := p.Step
	if p.Alias != "" {
		name += " " + p.Alias
	}
	return fmt.Sprintf("line %d: cannot migrate %s (step %d of %s, document %d): %s; left unchanged", p.Line, name, p.StepNum, p.Resource, p.Document, p.Reason)
}

// Result is the outcome for one file.
type Result struct {
	Output   []byte
	Changes  []Change
	Problems []Problem
	// Edits turn the file into Output, in line order, none overlapping:
	// what a diff of the two shows, known without comparing them.
	Edits []Edit
}

// Edit replaces the source's lines [From, To) (0-based) with Lines, each
// with its line ending.
type Edit struct {
	From, To int
	Lines    []string
}

// manifest is what a step's migration needs of the document holding it.
type manifest struct {
	doc       int
	kind      string
	name      string
	namespace string
}

func (m manifest) resource() string {
	if m.namespace == "" {
		return m.kind + " " + m.name
	}
	return m.kind + " " + m.namespace + "/" + m.name
}

// File migrates one file's worth of YAML documents.
func File(src []byte, opts Options) (*Result, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	lines := splitLines(src)
	secrets := indexSecrets(opts.Secrets)
	res := &Result{}
	for docNum := 1; ; docNum++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not valid YAML: %w", err)
		}
		m, steps := stepsOf(&doc)
		m.doc = docNum
		for i, step := range steps {
			e, change, problem := migrateStep(step, lines, opts, secrets, m)
			switch {
			case problem != nil:
				problem.Document, problem.Resource, problem.StepNum = m.doc, m.resource(), i+1
				res.Problems = append(res.Problems, *problem)
			case change != nil:
				res.Changes = append(res.Changes, *change)
				res.Edits = append(res.Edits, e...)
			}
		}
	}
	sort.Slice(res.Edits, func(i, j int) bool { return res.Edits[i].From < res.Edits[j].From })
	for i := 1; i < len(res.Edits); i++ {
		if res.Edits[i].From < res.Edits[i-1].To {
			// Each step's entries are its own lines; two edits on one line
			// would be a bug here, and a wrong rewrite is worse than none.
			return nil, fmt.Errorf("internal error: edits of lines %d and %d overlap", res.Edits[i-1].From+1, res.Edits[i].From+1)
		}
	}
	res.Output = apply(lines, res.Edits)
	return res, nil
}

// stepsOf finds the step mappings of a Stage's promotion template, a
// PromotionTask or a ClusterPromotionTask.
func stepsOf(doc *yaml.Node) (manifest, []*yaml.Node) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return manifest{}, nil
	}
	root := doc.Content[0]
	meta := yamlnode.Get(root, "metadata")
	m := manifest{kind: yamlnode.Scalar(yamlnode.Get(root, "kind")), name: yamlnode.Scalar(yamlnode.Get(meta, "name")), namespace: yamlnode.Scalar(yamlnode.Get(meta, "namespace"))}
	var path []string
	switch m.kind {
	case "Stage":
		path = []string{"spec", "promotionTemplate", "spec", "steps"}
	case "PromotionTask", "ClusterPromotionTask":
		path = []string{"spec", "steps"}
	default:
		return m, nil
	}
	n := root
	for _, k := range path {
		if n = yamlnode.Get(n, k); n == nil {
			return m, nil
		}
	}
	if n.Kind != yaml.SequenceNode {
		return m, nil
	}
	return m, n.Content
}

// migrateStep plans the edits for one step, or says why it cannot.
func migrateStep(step *yaml.Node, lines []string, opts Options, secrets secretIndex, m manifest) ([]Edit, *Change, *Problem) {
	uses := yamlnode.Scalar(yamlnode.Get(step, "uses"))
	if !StepNames[uses] {
		return nil, nil, nil
	}
	cfg := yamlnode.Get(step, "config")
	if cfg == nil || cfg.Kind != yaml.MappingNode {
		return nil, nil, nil
	}
	owner, repo, creds := yamlnode.Get(cfg, "owner"), yamlnode.Get(cfg, "repo"), yamlnode.Get(cfg, "credentials")
	if owner == nil && repo == nil && creds == nil {
		return nil, nil, nil // already current
	}
	alias := yamlnode.Scalar(yamlnode.Get(step, "as"))
	problem := func(reason string) *Problem {
		return &Problem{Line: cfg.Line, Step: uses, Alias: alias, Reason: reason}
	}
	switch {
	case cfg.Style&yaml.FlowStyle != 0:
		return nil, nil, problem("its config is a flow-style mapping ({...}); rewrite it by hand")
	case yamlnode.Get(cfg, "repoURL") != nil:
		return nil, nil, problem("it has both repoURL and v1.8 fields; remove owner, repo and credentials by hand")
	case owner == nil || repo == nil:
		return nil, nil, problem("it lacks owner or repo")
	case owner.Kind != yaml.ScalarNode || repo.Kind != yaml.ScalarNode:
		return nil, nil, problem("owner or repo is not a plain value")
	case strings.Contains(owner.Value, "${{") || strings.Contains(repo.Value, "${{"):
		return nil, nil, problem("owner or repo is an expression; write repoURL as an expression yourself, e.g. https://github.com/${{ vars.owner }}/${{ vars.repo }}")
	}
	secret := yamlnode.Scalar(yamlnode.Get(creds, "secretName"))
	base, refs, reason := secrets.baseURL(m, secret, opts.AssumeGitHubCom)
	if reason != "" {
		return nil, nil, problem(reason)
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
	if !keysWhereParsed(cfg, lines) {
		return nil, nil, problem("its lines are not where the YAML parser counts them (a line break other than LF or CRLF: a lone CR, NEL, LS or PS); rewrite it by hand")
	}
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
	var edits []Edit
	for key, sp := range spans {
		var repl []string
		if key == "owner" {
			repl = []string{indent + "repoURL: " + repoURL + eol}
		}
		edits = append(edits, Edit{From: sp[0], To: sp[1], Lines: repl})
	}
	return edits, &Change{Line: cfg.Line, Step: uses, Alias: alias, RepoURL: repoURL, Secrets: refs, SecretName: secret}, nil
}

// keysWhereParsed reports whether each key of cfg starts its line and
// column as the parser reported them. The parser also breaks lines at a
// lone CR and at NEL, LS and PS, where the text is split at LF alone; an
// edit at a line counted one way and made the other would damage the file.
func keysWhereParsed(cfg *yaml.Node, lines []string) bool {
	for i := 0; i+1 < len(cfg.Content); i += 2 {
		k := cfg.Content[i]
		if k.Line < 1 || k.Line > len(lines) || k.Column < 1 {
			return false
		}
		// Columns count characters; before a block key are spaces alone,
		// so bytes and characters agree up to it (ownsLine checks that).
		l := lines[k.Line-1]
		if k.Column-1 > len(l) {
			return false
		}
		rest := l[k.Column-1:]
		if !strings.HasPrefix(rest, k.Value) && !strings.HasPrefix(rest, `"`+k.Value) && !strings.HasPrefix(rest, "'"+k.Value) {
			return false
		}
	}
	return true
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

// apply builds the output in one pass over the lines: edits are sorted
// and disjoint, so memory and time stay linear in the file.
func apply(lines []string, edits []Edit) []byte {
	var out bytes.Buffer
	next := 0
	for _, e := range edits {
		for _, l := range lines[next:e.From] {
			out.WriteString(l)
		}
		for _, l := range e.Lines {
			out.WriteString(l)
		}
		next = e.To
	}
	for _, l := range lines[next:] {
		out.WriteString(l)
	}
	return out.Bytes()
}
