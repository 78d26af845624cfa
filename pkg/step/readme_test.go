package step

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/config/schemas"
)

// The README's step reference is what users configure from; these tests
// hold it to the JSON Schemas the steps validate against and to the output
// keys the steps write, so that a setting or output added in code and not
// in the README (or the other way round) fails here.

const docReadmePath = "../../README.md"

// docV18Keys are the deprecated format's keys: described in prose in the
// README, not in the current format's table.
var docV18Keys = []string{"owner", "repo", "credentials"}

// docStepOutputs says, for every out* constant of state.go, which step's
// output table lists it; docStateKeys are the steps' own saved state, which
// the README names in prose as state to leave alone. A new constant must
// be placed in one of them.
var (
	docStepOutputs = map[string][]string{
		"gha-dispatch-workflow": {outRunID, outHTMLURL, outRunURL, outAttribution, outCorrelationKey, outHeadSHA, outHeadBranch, outLinks},
		"gha-wait-for-workflow": {outConclusion, outHTMLURL, outRunAttempt, outRunID, outFailedJobs, outHeadSHA, outHeadBranch, outLinks, outFailure, outOutputs},
	}
	docStateKeys = map[string][]string{
		"gha-dispatch-workflow": {outDispatch, outCancel},
		"gha-wait-for-workflow": {outWait},
	}
)

func docReadme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(docReadmePath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docSection is the text under the heading line head up to the next heading
// of the same or a higher level.
func docSection(t *testing.T, text, head string) string {
	t.Helper()
	level := strings.Index(head, " ")
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if l != head {
			continue
		}
		var out []string
		for _, m := range lines[i+1:] {
			if n := docHeadingLevel(m); n > 0 && n <= level {
				break
			}
			out = append(out, m)
		}
		return strings.Join(out, "\n")
	}
	t.Fatalf("README has no heading %q", head)
	return ""
}

func docHeadingLevel(line string) int {
	n := len(line) - len(strings.TrimLeft(line, "#"))
	if n == 0 || !strings.HasPrefix(line[n:], " ") {
		return 0
	}
	return n
}

var docRowName = regexp.MustCompile("^\\| `([A-Za-z]+)` \\|")

// docTableRows maps each row of the tables in text whose first cell is one
// backquoted name to its cells.
func docTableRows(text string) map[string][]string {
	rows := map[string][]string{}
	for _, l := range strings.Split(text, "\n") {
		if m := docRowName.FindStringSubmatch(l); m != nil {
			cells := strings.Split(strings.Trim(strings.ReplaceAll(l, `\|`, "¦"), "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			rows[m[1]] = cells
		}
	}
	return rows
}

func docSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type docSchema struct {
	Properties map[string]struct {
		Type json.RawMessage `json:"type"`
	} `json:"properties"`
	Required []string `json:"required"`
}

// docSchemaType is a property's type, the first one when it lists several
// (runID: an integer, or a string of digits).
func docSchemaType(t *testing.T, raw json.RawMessage) string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 {
		t.Fatalf("schema type %s", raw)
	}
	return many[0]
}

// TestReadmeSettingsMatchSchemas: each step's configuration table names
// every property of its JSON Schema (the v1.8 keys aside, which have their
// own paragraph), no other, with the schema's type and requiredness.
func TestReadmeSettingsMatchSchemas(t *testing.T) {
	text := docReadme(t)
	for _, tt := range []struct {
		step, table string
		schema      []byte
	}{
		{"gha-dispatch-workflow", "### Configuration (current format)", schemas.DispatchWorkflow},
		{"gha-wait-for-workflow", "### Configuration", schemas.WaitForWorkflow},
	} {
		t.Run(tt.step, func(t *testing.T) {
			var s docSchema
			if err := json.Unmarshal(tt.schema, &s); err != nil {
				t.Fatal(err)
			}
			ref := docSection(t, text, "## Step reference: `"+tt.step+"`")
			rows := docTableRows(docSection(t, ref, tt.table))
			var want []string
			for name := range s.Properties {
				if !slices.Contains(docV18Keys, name) {
					want = append(want, name)
				}
			}
			sort.Strings(want)
			if got := docSortedKeys(rows); !slices.Equal(got, want) {
				t.Fatalf("README's %s table lists %v; the schema has %v", tt.step, got, want)
			}
			for _, name := range want {
				cells := rows[name]
				if len(cells) < 4 {
					t.Fatalf("%s: row %q has %d cells", tt.step, name, len(cells))
				}
				if typ := docSchemaType(t, s.Properties[name].Type); !strings.HasPrefix(cells[1], typ) {
					t.Errorf("%s.%s: README says type %q, the schema %q", tt.step, name, cells[1], typ)
				}
				// repoURL is required by the current format; the schema
				// requires it or the v1.8 owner and repo (checked in code).
				required := slices.Contains(s.Required, name) || name == "repoURL"
				if (cells[2] == "Y") != required {
					t.Errorf("%s.%s: README says required %q, the schema %v", tt.step, name, cells[2], required)
				}
			}
			for _, k := range docV18Keys {
				if !strings.Contains(ref, "`"+k) && !strings.Contains(text, "`"+k+"`") {
					t.Errorf("%s: the v1.8 key %q is not described", tt.step, k)
				}
			}
			if !strings.Contains(ref, "v1.8 format") {
				t.Errorf("%s: the step reference does not mention the v1.8 format", tt.step)
			}
			docCheckOverview(t, text, "Config", tt.step, want)
		})
	}
}

// docOutConstants reads state.go's out* constants: name → value.
func docOutConstants(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "state.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "out") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("%s is not a string literal", n.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				consts[n.Name] = v
			}
		}
	}
	if len(consts) == 0 {
		t.Fatal("no out* constants in state.go")
	}
	return consts
}

// TestReadmeOutputsMatchOutputKeys: each step's output table lists exactly
// the keys the step writes for later steps, every output key of state.go
// is either such an output or state the README names, and the overview
// table agrees.
func TestReadmeOutputsMatchOutputKeys(t *testing.T) {
	placed := map[string]bool{}
	for _, m := range []map[string][]string{docStepOutputs, docStateKeys} {
		for _, keys := range m {
			for _, k := range keys {
				placed[k] = true
			}
		}
	}
	for name, v := range docOutConstants(t) {
		if !placed[v] {
			t.Errorf("state.go's %s (%q) is neither a step's output nor its state here: add it to the README and to docStepOutputs or docStateKeys", name, v)
		}
	}
	text := docReadme(t)
	for _, stepName := range docSortedKeys(docStepOutputs) {
		ref := docSection(t, text, "## Step reference: `"+stepName+"`")
		want := slices.Clone(docStepOutputs[stepName])
		sort.Strings(want)
		if got := docSortedKeys(docTableRows(docSection(t, ref, "### Output"))); !slices.Equal(got, want) {
			t.Errorf("README's %s output table lists %v; the step writes %v", stepName, got, want)
		}
		for _, k := range docStateKeys[stepName] {
			if !strings.Contains(ref, "`"+k+"`") {
				t.Errorf("%s: its state key %q is not named in its step reference", stepName, k)
			}
		}
		docCheckOverview(t, text, "Output", stepName, want)
	}
}

// docCheckOverview: the overview table ("The two steps together") names in
// its row, in the step's column, exactly want.
func docCheckOverview(t *testing.T, text, row, stepName string, want []string) {
	t.Helper()
	var cells []string
	for _, l := range strings.Split(docSection(t, text, "## The two steps together"), "\n") {
		if strings.HasPrefix(l, "| "+row+" |") {
			cells = strings.Split(strings.Trim(l, "|"), "|")
		}
	}
	col := map[string]int{"gha-dispatch-workflow": 1, "gha-wait-for-workflow": 2}[stepName]
	if len(cells) <= col {
		t.Fatalf("the overview table has no %s row", row)
	}
	var got []string
	for _, m := range regexp.MustCompile("`([A-Za-z]+)`").FindAllStringSubmatch(cells[col], -1) {
		got = append(got, m[1])
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("the overview's %s row for %s lists %v, not %v", row, stepName, got, want)
	}
}

// TestReadmeLinksResolve: every #anchor link in the README and in docs/
// names a heading of its target (GitHub's slugs), and every relative file
// link exists.
func TestReadmeLinksResolve(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, docReadmePath, "../../CHANGELOG.md", "../../SECURITY.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := f
			if file != "" {
				path = filepath.Join(filepath.Dir(f), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %q: %v", filepath.Base(f), target, err)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !slices.Contains(docAnchors(t, path), anchor) {
				t.Errorf("%s: link %q names no heading of %s", filepath.Base(f), target, filepath.Base(path))
			}
		}
	}
}

// docAnchors are the heading slugs of a Markdown file as GitHub makes them:
// lower case, punctuation other than - and _ dropped, spaces to -, a
// repeated slug suffixed -1, -2.
func docAnchors(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var out []string
	fence := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "```") {
			fence = !fence
		}
		n := docHeadingLevel(l)
		if fence || n == 0 {
			continue
		}
		var s strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(l[n:])) {
			switch {
			case r == ' ':
				s.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				s.WriteRune(r)
			}
		}
		slug := s.String()
		if k := seen[slug]; k > 0 {
			out = append(out, slug+"-"+strconv.Itoa(k))
		} else {
			out = append(out, slug)
		}
		seen[slug]++
	}
	return out
}

// TestReadmeLayoutNamesEveryPackage: the README's Layout names every
// directory holding Go code, and every file of the library packages
// (pkg/), so that a newcomer finds where a thing happens from it.
func TestReadmeLayoutNamesEveryPackage(t *testing.T) {
	layout := docSection(t, docReadme(t), "## Layout")
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && (name == ".git" || name == "testdata" || name == "node_modules" || name == "bin" || name == "dist") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		dir := filepath.ToSlash(filepath.Dir(rel))
		if !strings.Contains(layout, dir+"/") && !strings.Contains(layout, filepath.Base(dir)+"/ ") {
			t.Errorf("the README's Layout does not name %s/", dir)
		}
		if strings.HasPrefix(dir, "pkg/") && !regexp.MustCompile(`\b`+regexp.QuoteMeta(name)+`\b`).MatchString(layout) {
			t.Errorf("the README's Layout does not name %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDocumentsNameTestsThatExist: every test, fuzz target or benchmark
// the README and docs/ name as the check of a promise exists (a name
// ending in … or * is a prefix), so that a renamed test does not leave a
// promise pointing at nothing.
func TestDocumentsNameTestsThatExist(t *testing.T) {
	funcs := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]*)\(`)
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			funcs[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob("../../docs/*.md")
	named := regexp.MustCompile("`((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]*)(…|\\*)?")
	for _, f := range append(docs, docReadmePath, "../../SECURITY.md", "../../CHANGELOG.md") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range named.FindAllStringSubmatch(string(b), -1) {
			name, prefix := m[1], m[2] != ""
			found := funcs[name]
			for fn := range funcs {
				if prefix && strings.HasPrefix(fn, name) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s names %s, which no _test.go declares", filepath.Base(f), m[0][1:])
			}
		}
	}
}

// TestReadmeNamesEveryLabelValue: the values the README lists for the
// attribution output and for the metrics' endpoint, attribution and
// reason labels are exactly those the code has.
func TestReadmeNamesEveryLabelValue(t *testing.T) {
	read := func(path, pattern string) []string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1])
		}
		if len(out) == 0 {
			t.Fatalf("%s: nothing matches %s", path, pattern)
		}
		sort.Strings(out)
		return out
	}
	methods := read("../dispatch/state.go", `Method = "([a-z-]+)"`)
	reasons := read("../dispatch/attribution.go", `Reason = "([a-z-]+)"`)
	endpoints := append(read("../../internal/ghclient/observe.go", `\{"([a-z-]+)", regexp\.`), "other")
	sort.Strings(endpoints)

	text := docReadme(t)
	row := func(text, first string) string {
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "| `"+first+"` |") {
				return l
			}
		}
		t.Fatalf("no table row for %s", first)
		return ""
	}
	names := func(s string) []string {
		var out []string
		for _, m := range regexp.MustCompile("`([a-z][a-z0-9-]*)`").FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		sort.Strings(out)
		return slices.Compact(out)
	}
	metricsText := docSection(t, text, "## Metrics")
	_, endpointList, _ := strings.Cut(row(metricsText, "kargo_gha_github_requests_total"), "is one of")
	dispatchRef := docSection(t, text, "## Step reference: `gha-dispatch-workflow`")
	for _, c := range []struct {
		what      string
		got, want []string
	}{
		{"the requests metric's endpoints", names(endpointList), endpoints},
		{"the dispatches metric's attributions", names(strings.SplitN(row(metricsText, "kargo_gha_dispatches_total"), "|", 5)[3]), methods},
		{"the refusals metric's reasons", names(strings.SplitN(row(metricsText, "kargo_gha_attribution_refusals_total"), "|", 5)[3]), reasons},
		{"the attribution output's values", docAttributionValues(row(docSection(t, dispatchRef, "### Output"), "attribution")), methods},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("README lists %v as %s; the code has %v", c.got, c.what, c.want)
		}
	}
}

// docAttributionValues are the backquoted values in the attribution output's
// description, each followed by its explanation in parentheses.
func docAttributionValues(row string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`([a-z-]+)` \\(").FindAllStringSubmatch(row, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}
