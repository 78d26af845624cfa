package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// With --log-format json every stderr line is one JSON object; --verbose's
// counts were plain "kargo-gha: ..." lines among them, which a log
// collector reading JSON lines rejects. Dispatch, wait and check alike.
func TestVerboseCountsAreJSONWithJSONLogs(t *testing.T) {
	f := newCheckFixture(t)
	repoURL := f.sim.RepoURL("myorg", "my-app")
	manifest := writeFile(t, "stage.yaml", `apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata: {name: prod, namespace: demo}
spec:
  promotionTemplate:
    spec:
      steps:
      - uses: gha-dispatch-workflow
        config: {repoURL: `+repoURL+`, workflowFile: deploy.yml, ref: main}
`)
	id := f.sim.CreateRun(f.repo, "deploy.yml", "main", "octocat", nil, 0)
	for name, args := range map[string][]string{
		"dispatch": {"dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main"},
		"wait":     {"wait", "--repo-url", repoURL, "--run-id", jsonNumber(id), "--timeout", "1s"},
		"check":    {"check", manifest},
	} {
		t.Run(name, func(t *testing.T) {
			f.run(t, append([]string{"--log-format", "json", "--verbose"}, args...)...)
			counts := 0
			for _, line := range strings.Split(strings.TrimSpace(f.stderr.String()), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("stderr line %q is not JSON: %v", line, err)
				}
				if rec["verbose"] == true && strings.HasPrefix(rec["msg"].(string), "kargo-gha: requests") {
					counts++
				}
			}
			if counts == 0 {
				t.Fatalf("no request counts in %s", f.stderr.String())
			}
		})
	}
}
