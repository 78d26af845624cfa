package migrate

import (
	"bytes"
	"os"
	"testing"
)

// FuzzFile: on any input, File returns an error or a result whose edits
// are in order, within the file and disjoint, and whose output is the
// source with exactly those edits: every line outside them is kept.
func FuzzFile(f *testing.F) {
	for _, name := range []string{"testdata/manifests.yaml", "testdata/crlf.yaml"} {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("kind: Stage\rmetadata: {namespace: a}\rspec:\r  promotionTemplate:\r    spec:\r      steps:\r      - uses: gha-wait-for-workflow\r        config:\r          owner: o\r          repo: r\r"))
	f.Fuzz(func(t *testing.T, src []byte) {
		opts := Options{Secrets: []Secret{{SecretRef{"a", "gh"}, ""}, {SecretRef{"kargo-demo", "github-credentials"}, ""}}, AssumeGitHubCom: true}
		res, err := File(src, opts)
		if err != nil {
			return
		}
		lines := splitLines(src)
		var want bytes.Buffer
		next := 0
		for _, e := range res.Edits {
			if e.From < next || e.To < e.From || e.To > len(lines) {
				t.Fatalf("edit %+v out of order or range (%d lines, previous end %d)", e, len(lines), next)
			}
			for _, l := range lines[next:e.From] {
				want.WriteString(l)
			}
			for _, l := range e.Lines {
				want.WriteString(l)
			}
			next = e.To
		}
		for _, l := range lines[next:] {
			want.WriteString(l)
		}
		if !bytes.Equal(res.Output, want.Bytes()) {
			t.Fatalf("output is not the source with its edits")
		}
	})
}
