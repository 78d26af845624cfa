package migrate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/repourl"

	"github.com/kargo-gha/kargo-gha/internal/yamlnode"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var opts = Options{Secrets: []Secret{{SecretRef{"kargo-demo", "ghes-credentials"}, "https://ghe.example.com/api/v3"}}, AssumeGitHubCom: true}

func TestGolden(t *testing.T) {
	for _, name := range []string{"manifests.yaml", "crlf.yaml"} {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			res, err := File(src, opts)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(name, ".yaml")+".golden")
			if *update {
				if err := os.WriteFile(golden, res.Output, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.Output, want) {
				t.Fatalf("output differs from %s (go test ./pkg/migrate -update to accept):\n%s", golden, res.Output)
			}
			// Migrating again changes nothing: the output is current.
			again, err := File(res.Output, opts)
			if err != nil || len(again.Changes) != 0 || !bytes.Equal(again.Output, res.Output) || len(again.Problems) != len(res.Problems) {
				t.Fatalf("second migration: %+v, %v", again, err)
			}
			assertCurrentFormat(t, res.Output)
		})
	}
}

func TestChangesAndProblems(t *testing.T) {
	src, _ := os.ReadFile("testdata/manifests.yaml")
	res, err := File(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range res.Changes {
		got = append(got, c.Step+" "+c.RepoURL+" "+c.SecretName)
	}
	want := []string{
		"gha-dispatch-workflow https://github.com/myorg/my-app github-credentials",
		"gha-wait-for-workflow https://github.com/myorg/my-app github-credentials",
		"gha-dispatch-workflow https://ghe.example.com/platform/service ghes-credentials",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("changes:\n%s", strings.Join(got, "\n"))
	}
	if len(res.Problems) != 2 || !strings.Contains(res.Problems[0].String(), "line 69: cannot migrate gha-dispatch-workflow (step 1 of PromotionTask kargo-demo/deploy-anywhere, document 3): owner or repo is an expression") ||
		!strings.Contains(res.Problems[1].String(), "flow-style") {
		t.Fatalf("problems: %v", res.Problems)
	}
	// Only the migrated lines changed: every other line is still there, in order.
	if removed, added := lineDiff(src, res.Output); removed != 11 || added != 3 {
		t.Fatalf("%d lines removed, %d added; want 11 and 3", removed, added)
	}
}

// assertCurrentFormat: every gha step that no longer has v1.8 fields passes
// the current schema.
func assertCurrentFormat(t *testing.T, out []byte) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(out))
	checked := 0
	for {
		var doc yaml.Node
		if dec.Decode(&doc) != nil {
			break
		}
		_, steps := stepsOf(&doc)
		for _, step := range steps {
			uses := yamlnode.Scalar(yamlnode.Get(step, "uses"))
			cfgNode := yamlnode.Get(step, "config")
			if !StepNames[uses] || cfgNode == nil || yamlnode.Get(cfgNode, "owner") != nil {
				continue
			}
			var cfg map[string]any
			if err := cfgNode.Decode(&cfg); err != nil {
				t.Fatal(err)
			}
			if problems := config.SchemaProblems(uses, cfg); len(problems) != 0 {
				t.Errorf("line %d: %s config does not validate: %v", cfgNode.Line, uses, problems)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no migrated step was checked")
	}
}

func lineDiff(a, b []byte) (removed, added int) {
	count := map[string]int{}
	for _, l := range splitLines(a) {
		count[l]++
	}
	for _, l := range splitLines(b) {
		count[l]--
	}
	for _, n := range count {
		if n > 0 {
			removed += n
		} else {
			added -= n
		}
	}
	return removed, added
}

// TestRepoURLIsTheStepsMapping: the repoURL written is the repository the
// steps would have used for the v1.8 configuration (repourl.FromLegacy):
// hosts lower-cased, owner and repo as written, the API path dropped.
func TestRepoURLIsTheStepsMapping(t *testing.T) {
	tests := []struct {
		name, baseURL, want string
	}{
		{"github.com", "", "https://github.com/MyOrg/My-App"},
		{"api.github.com mixed case", "https://API.GitHub.com/", "https://github.com/MyOrg/My-App"},
		{"ghes /api/v3", "https://ghe.example.com/api/v3", "https://ghe.example.com/MyOrg/My-App"},
		{"ghes /api/v3/", "https://ghe.example.com/api/v3/", "https://ghe.example.com/MyOrg/My-App"},
		{"ghes mixed case", "https://GHE.Example.com/api/v3", "https://ghe.example.com/MyOrg/My-App"},
		{"ghes host and slash", "https://GHE.Example.com/", "https://ghe.example.com/MyOrg/My-App"},
		{"ghes port", "https://GHE.Example.com:8443/api/v3/", "https://ghe.example.com:8443/MyOrg/My-App"},
		{"ghes plain http kept", "http://ghe.example.com/api/v3", "http://ghe.example.com/MyOrg/My-App"},
		{"ghe.com API host", "https://api.Octo.GHE.com/", "https://octo.ghe.com/MyOrg/My-App"},
		{"ghe.com web host", "https://octo.ghe.com", "https://octo.ghe.com/MyOrg/My-App"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "kind: PromotionTask\nmetadata: {name: t, namespace: p}\nspec:\n  steps:\n  - uses: gha-wait-for-workflow\n    config:\n      owner: MyOrg\n      repo: My-App\n      credentials:\n        secretName: s\n      runID: 1\n"
			res, err := File([]byte(src), Options{Secrets: []Secret{{SecretRef{"p", "s"}, tt.baseURL}}})
			if err != nil || len(res.Problems) != 0 || len(res.Changes) != 1 {
				t.Fatalf("File: %+v, %v", res, err)
			}
			if got := res.Changes[0].RepoURL; got != tt.want {
				t.Fatalf("repoURL %s, want %s", got, tt.want)
			}
			if !strings.Contains(string(res.Output), "      repoURL: "+tt.want+"\n") {
				t.Fatalf("output:\n%s", res.Output)
			}
			steps, _ := repourl.FromLegacy("MyOrg", "My-App", tt.baseURL, repourl.Options{AllowHTTP: true})
			if migrated, err := repourl.Parse(tt.want, repourl.Options{AllowHTTP: true}); err != nil || migrated != steps {
				t.Fatalf("the migrated repoURL names %+v (%v); the v1.8 config named %+v", migrated, err, steps)
			}
		})
	}
}

func TestUnmappableRepositoryIsAProblem(t *testing.T) {
	for name, cfg := range map[string]string{
		"baseURL not a URL": "owner: o\n      repo: r\n      credentials:\n        secretName: bad\n",
		"owner invalid":     "owner: my org\n      repo: r\n      credentials:\n        secretName: s\n",
	} {
		t.Run(name, func(t *testing.T) {
			src := "kind: PromotionTask\nmetadata: {name: t, namespace: p}\nspec:\n  steps:\n  - uses: gha-dispatch-workflow\n    config:\n      " + cfg
			res, err := File([]byte(src), Options{Secrets: []Secret{{SecretRef{"p", "s"}, ""}, {SecretRef{"p", "bad"}, "ghe.example.com/api/v3"}}})
			if err != nil || len(res.Changes) != 0 || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Reason, "make no repository URL") || string(res.Output) != src {
				t.Fatalf("File: %+v, %v", res, err)
			}
		})
	}
}

// A lone CR (or NEL, LS, PS) breaks a line for the parser but not for the
// line split the edits use: such a step is named, not edited at a wrong
// line (which once panicked).
func TestLineBreaksTheParserCountsOtherwise(t *testing.T) {
	for name, br := range map[string]string{"CR": "\r", "NEL": "\u0085", "LS": "\u2028"} {
		t.Run(name, func(t *testing.T) {
			src := "kind: PromotionTask\nmetadata: {name: t, namespace: a}\nspec:\n  steps:\n  - uses: gha-wait-for-workflow\n    config:\n      runID: 1" + br + "      owner: o\n      repo: r\n      credentials:\n        secretName: gh\n"
			res, err := File([]byte(src), Options{Secrets: []Secret{{SecretRef{"a", "gh"}, ""}}})
			if err != nil {
				t.Fatalf("the parser refuses a %s: %v", name, err)
			}
			if len(res.Changes) != 0 || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Reason, "line break") || string(res.Output) != src {
				t.Fatalf("changes %+v, problems %v", res.Changes, res.Problems)
			}
		})
	}
}
