package migrate

import (
	"strings"
	"testing"
)

// stageDoc is a Stage in namespace ns whose v1.8 step uses Secret gh.
func stageDoc(ns string) string {
	return `apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: deploy
  namespace: ` + ns + `
spec:
  promotionTemplate:
    spec:
      steps:
      - uses: gha-dispatch-workflow
        as: release
        config:
          owner: o
          repo: r
          credentials:
            secretName: gh
          workflowFile: deploy.yml
          ref: main
`
}

var (
	ghTeamA = Secret{SecretRef{"team-a", "gh"}, ""}
	ghTeamB = Secret{SecretRef{"team-b", "gh"}, "https://ghe.b.example/api/v3"}
)

// TestSecretsAreMatchedByNamespace is issue 20's scenario: two Secrets
// named gh, in team-a (github.com) and team-b (an Enterprise Server), and
// a Stage in each of team-a, team-b and team-c. Each Stage gets its own
// namespace's host, whatever the order of the Secrets or the documents;
// team-c, which has no gh, is left unchanged and named, even with
// --github-com, since gh is known elsewhere.
func TestSecretsAreMatchedByNamespace(t *testing.T) {
	orders := map[string][]Secret{"team-a first": {ghTeamA, ghTeamB}, "team-b first": {ghTeamB, ghTeamA}}
	docs := map[string][]string{"a b c": {"team-a", "team-b", "team-c"}, "c b a": {"team-c", "team-b", "team-a"}}
	want := map[string]string{"team-a": "https://github.com/o/r", "team-b": "https://ghe.b.example/o/r"}
	for secretsOrder, secrets := range orders {
		for docOrder, namespaces := range docs {
			for _, assume := range []bool{false, true} {
				var parts []string
				for _, ns := range namespaces {
					parts = append(parts, stageDoc(ns))
				}
				src := strings.Join(parts, "---\n")
				res, err := File([]byte(src), Options{Secrets: secrets, AssumeGitHubCom: assume})
				if err != nil {
					t.Fatal(err)
				}
				name := secretsOrder + ", documents " + docOrder
				got := map[string]string{}
				for _, c := range res.Changes {
					if len(c.Secrets) != 1 {
						t.Fatalf("%s: change %+v relies on %d Secrets", name, c, len(c.Secrets))
					}
					got[c.Secrets[0].Namespace] = c.RepoURL
				}
				if len(got) != 2 || got["team-a"] != want["team-a"] || got["team-b"] != want["team-b"] {
					t.Fatalf("%s: migrated %v, want %v", name, got, want)
				}
				if len(res.Problems) != 1 {
					t.Fatalf("%s: problems %v, want team-c's alone", name, res.Problems)
				}
				msg := res.Problems[0].String()
				for _, part := range []string{"Stage team-c/deploy", "gha-dispatch-workflow release", `Secret "gh" is not in namespace team-c`, "only in team-a, team-b", "left unchanged"} {
					if !strings.Contains(msg, part) {
						t.Errorf("%s: problem %q does not say %q", name, msg, part)
					}
				}
				// team-c's document is byte for byte what it was.
				if !strings.Contains(string(res.Output), stageDoc("team-c")) {
					t.Errorf("%s: team-c's Stage was changed:\n%s", name, res.Output)
				}
			}
		}
	}
}

func TestSecretsThatCannotBeTold(t *testing.T) {
	clusterTask := "kind: ClusterPromotionTask\nmetadata: {name: shared}\nspec:\n  steps:\n  - uses: gha-wait-for-workflow\n    config:\n      owner: o\n      repo: r\n      credentials:\n        secretName: gh\n      runID: 1\n"
	tests := []struct {
		name    string
		src     string
		secrets []Secret
		assume  bool
		repoURL string // "" when the step is a problem
		reason  []string
	}{
		{name: "the same Secret twice in its namespace", src: stageDoc("team-a"), secrets: []Secret{ghTeamA, {SecretRef{"team-a", "gh"}, "https://ghe.example/api/v3"}},
			reason: []string{"Secret team-a/gh is in --credentials-file 2 times", "team-a/gh: github.com", "team-a/gh: https://ghe.example/api/v3"}},
		{name: "a Stage without a namespace", src: strings.Replace(stageDoc("x"), "  namespace: x\n", "", 1), secrets: []Secret{ghTeamA}, assume: true,
			reason: []string{"Stage deploy", "no metadata.namespace", "in team-a"}},
		{name: "a name in no namespace, github.com not assumed", src: stageDoc("team-c"), secrets: nil,
			reason: []string{`Secret "gh" is in no namespace`, "--github-com"}},
		{name: "no Secret named", src: strings.Replace(stageDoc("team-a"), "          credentials:\n            secretName: gh\n", "", 1), secrets: []Secret{ghTeamA},
			reason: []string{"names no credentials Secret", "--github-com"}},
		{name: "a name in no namespace, github.com assumed", src: stageDoc("team-c"), secrets: nil, assume: true, repoURL: "https://github.com/o/r"},
		{name: "a ClusterPromotionTask whose Secrets agree", src: clusterTask, secrets: []Secret{ghTeamB, {SecretRef{"team-z", "gh"}, "https://ghe.b.example/api/v3"}}, repoURL: "https://ghe.b.example/o/r"},
		{name: "a ClusterPromotionTask whose Secrets disagree", src: clusterTask, secrets: []Secret{ghTeamA, ghTeamB}, assume: true,
			reason: []string{"ClusterPromotionTask shared", "different hosts", "team-a/gh: github.com", "team-b/gh: https://ghe.b.example/api/v3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := File([]byte(tt.src), Options{Secrets: tt.secrets, AssumeGitHubCom: tt.assume})
			if err != nil {
				t.Fatal(err)
			}
			if tt.repoURL != "" {
				if len(res.Changes) != 1 || res.Changes[0].RepoURL != tt.repoURL || len(res.Problems) != 0 {
					t.Fatalf("changes %+v, problems %v; want %s", res.Changes, res.Problems, tt.repoURL)
				}
				return
			}
			if len(res.Changes) != 0 || len(res.Problems) != 1 || string(res.Output) != tt.src {
				t.Fatalf("changes %+v, problems %v, output changed: %v", res.Changes, res.Problems, string(res.Output) != tt.src)
			}
			for _, part := range tt.reason {
				if !strings.Contains(res.Problems[0].String(), part) {
					t.Errorf("problem %q does not say %q", res.Problems[0], part)
				}
			}
		})
	}
}
