package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/memtest"
	"github.com/kargo-gha/kargo-gha/internal/migrate"
)

// largeManifest is n lines of Stages in namespace team-a, each with a v1.8
// step on Secret gh: rendered Helm or kustomize output passes 50,000 lines.
func largeManifest(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() == 0 || bytes.Count(b.Bytes(), []byte{'\n'}) < n; i++ {
		fmt.Fprintf(&b, `---
apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: stage-%d
  namespace: team-a
  labels:
    app.kubernetes.io/part-of: my-app
spec:
  requestedFreight:
  - origin: {kind: Warehouse, name: my-app}
    sources: {direct: true}
  promotionTemplate:
    spec:
      steps:
      - uses: gha-dispatch-workflow
        as: dispatch
        config:
          owner: myorg
          repo: app-%d
          credentials:
            secretName: gh
          workflowFile: deploy.yml
          ref: main
      - uses: gha-wait-for-workflow
        config:
          repoURL: https://github.com/myorg/app-%d
          runID: "${{ outputs.dispatch.runID }}"
`, i, i, i)
	}
	return b.Bytes()
}

var teamAGitHub = migrate.Options{Secrets: []migrate.Secret{{SecretRef: migrate.SecretRef{Namespace: "team-a", Name: "gh"}}}}

// TestMigrateDiffApplies: the diff, applied by git to the original file,
// gives exactly the migrated file: CRLF line endings, a last line without
// a newline, edits at the start and end of a file and edits close enough to
// share a hunk included.
func TestMigrateDiffApplies(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not on PATH: the diff cannot be applied by git here")
	}
	step := "- uses: gha-wait-for-workflow\n  config:\n    owner: o\n    repo: r\n    credentials:\n      secretName: gh\n    runID: 1\n"
	task := func(steps string) string {
		return "kind: PromotionTask\nmetadata: {name: t, namespace: team-a}\nspec:\n  steps:\n" + indent(steps, "  ")
	}
	fixture := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "migrate", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.ReplaceAll(string(b), "namespace: kargo-demo", "namespace: team-a")
	}
	for name, src := range map[string]string{
		"the migrate fixture":      fixture("manifests.yaml"),
		"CRLF":                     fixture("crlf.yaml"),
		"no newline at the end":    strings.TrimSuffix(task(step), "\n"),
		"secretName the last line": strings.TrimSuffix(task(strings.Replace(step, "    runID: 1\n", "", 1)), "\n"),
		"steps sharing a hunk":     task(step + step + step),
		"steps far apart":          task(step + strings.Repeat("- uses: other\n", 20) + step),
		"50,000 lines":             string(largeManifest(50_000)),
	} {
		t.Run(name, func(t *testing.T) {
			opts := teamAGitHub
			opts.AssumeGitHubCom = true
			res, err := migrate.File([]byte(src), opts)
			if err != nil || len(res.Changes) == 0 {
				t.Fatalf("migrate: %+v, %v", res, err)
			}
			var diff bytes.Buffer
			if err := writeUnifiedDiff(&diff, "m.yaml", []byte(src), res.Edits); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			_ = os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(src), 0o644)
			_ = os.WriteFile(filepath.Join(dir, "m.diff"), diff.Bytes(), 0o644)
			cmd := exec.Command(git, "apply", "-p0", "--whitespace=nowarn", "m.diff")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git apply: %v\n%s\ndiff:\n%s", err, out, diff.String())
			}
			got, _ := os.ReadFile(filepath.Join(dir, "m.yaml"))
			if !bytes.Equal(got, res.Output) {
				t.Fatalf("the patched file differs from the migration:\n%q\nwant\n%q", got, res.Output)
			}
		})
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+prefix) + "\n"
}

// maxMigrateBytes50k bounds what `migrate` (diff mode) allocates in all on
// a 50,000-line manifest: issue 20 asks for under 100 MB, where the former
// line diff took 1.28 GB for 17,517 lines.
const maxMigrateBytes50k = 100 << 20

// TestMigrateDiffMemoryIsLinear holds the whole command (read, parse,
// migrate, diff) on a 50,000-line manifest to the bound, and shows the
// growth linear: twice the lines allocate less than three times as much.
func TestMigrateDiffMemoryIsLinear(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets.yaml")
	_ = os.WriteFile(secrets, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: gh, namespace: team-a}\nstringData: {accessToken: t}\n"), 0o600)
	allocated := map[int]uint64{}
	for _, n := range []int{25_000, 50_000} {
		path := filepath.Join(dir, fmt.Sprintf("m%d.yaml", n))
		_ = os.WriteFile(path, largeManifest(n), 0o644)
		var code int
		var out string
		allocated[n] = memtest.Allocated(func() { code, out, _ = runMigrateCmd("--credentials-file", secrets, path) })
		if code != 0 || strings.Count(out, "+          repoURL: https://github.com/myorg/app-") < n/30 {
			t.Fatalf("%d lines: exit %d, %d bytes of diff", n, code, len(out))
		}
	}
	t.Logf("allocated: 25,000 lines %d MiB, 50,000 lines %d MiB", allocated[25_000]>>20, allocated[50_000]>>20)
	if allocated[50_000] > maxMigrateBytes50k {
		t.Errorf("migrate allocated %d MiB on 50,000 lines; the bound is %d MiB", allocated[50_000]>>20, maxMigrateBytes50k>>20)
	}
	if allocated[50_000] > 3*allocated[25_000] {
		t.Errorf("twice the lines allocated %.1f times as much: not linear", float64(allocated[50_000])/float64(allocated[25_000]))
	}
}

// BenchmarkMigrateDiff50k is `migrate` in diff mode on 50,000 lines, the
// command as a user runs it (go test ./internal/cli -run X -bench MigrateDiff).
func BenchmarkMigrateDiff50k(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "m.yaml")
	_ = os.WriteFile(path, largeManifest(50_000), 0o644)
	b.ReportAllocs()
	for b.Loop() {
		if code, _, errOut := runMigrateCmd("--github-com", path); code != 0 {
			b.Fatal(errOut)
		}
	}
}
