package credentials

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseSecrets: any bytes as manifests: no panic, and an error never
// repeats a long run of the input (which could be a secret value).
func FuzzParseSecrets(f *testing.F) {
	f.Add([]byte(manifests))
	f.Add([]byte("kind: Secret\nmetadata: {name: x}\ndata:\n  password: \"bm90IGJhc2U2NA==\"\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{kind: Secret, metadata: {name: y}, stringData: {accessToken: ghp_x}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		secrets, err := ParseSecrets(bytes.NewReader(data))
		if err != nil {
			for _, word := range strings.Fields(string(data)) {
				if len(word) >= 24 && strings.Contains(err.Error(), word) {
					t.Fatalf("error repeats input %q: %v", word, err)
				}
			}
			return
		}
		_, _ = FindGit(secrets, "p", "https://github.com/o/r")
		for _, s := range secrets {
			_, _ = FromGitSecret(s)
		}
	})
}
