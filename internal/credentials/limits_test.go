package credentials

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/memtest"
)

func TestPrivateKeyFileIsBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), MaxPrivateKeyBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	exact := filepath.Join(dir, "exact.pem")
	if err := os.WriteFile(exact, append([]byte("-----BEGIN RSA PRIVATE KEY-----\n"), bytes.Repeat([]byte("A"), MaxPrivateKeyBytes-32)...), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file string
		tooLarge   bool
	}{
		{"endless device", "/dev/zero", true},
		{"file one byte over", big, true},
		{"file at the limit", exact, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{EnvAppID: "1", EnvAppInstallationID: "2", EnvAppPrivateKeyFile: tt.file}
			var err error
			n := memtest.Allocated(func() { _, err = FromEnv(func(k string) string { return env[k] }) })
			t.Logf("%s: %v, %d bytes allocated", tt.file, err, n)
			if n > 1<<20 {
				t.Errorf("reading %s allocated %d bytes", tt.file, n)
			}
			if got := errors.Is(err, ErrTooLarge); got != tt.tooLarge {
				t.Fatalf("err = %v; want too large %t", err, tt.tooLarge)
			}
			if tt.tooLarge && (!strings.Contains(err.Error(), EnvAppPrivateKeyFile) || !strings.Contains(err.Error(), tt.file)) {
				t.Fatalf("err %q names neither the variable nor the file", err)
			}
		})
	}
}

func TestInlinePrivateKeyIsBounded(t *testing.T) {
	env := map[string]string{EnvAppID: "1", EnvAppInstallationID: "2", EnvAppPrivateKey: strings.Repeat("A", MaxPrivateKeyBytes+1)}
	if _, err := FromEnv(func(k string) string { return env[k] }); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), EnvAppID) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseSecretsIsBounded(t *testing.T) {
	manyKeys := func(n int) string {
		var b strings.Builder
		b.WriteString("kind: Secret\nmetadata: {name: x}\nstringData:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "  k%d: v\n", i)
		}
		return b.String()
	}
	tests := []struct {
		name, in string
		want     string // in the error; "" for no error
	}{
		{"over the byte limit", "kind: List\nitems:\n" + strings.Repeat("- {}\n", MaxCredentialsFileBytes/5), "more than 1024 KiB"},
		{"a mapping of too many keys", manyKeys(maxMappingKeys + 1), "more than 1000 keys"},
		{"a mapping at the key limit", manyKeys(maxMappingKeys), ""},
		// Unchecked, the decoder's duplicate check takes about thirty seconds.
		{"a mapping of 80,000 keys", manyKeys(80000), "more than 1000 keys"},
		{"empty documents", "---\n---\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSecrets(strings.NewReader(tt.in))
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v; want %q", err, tt.want)
			}
		})
	}
}

func TestParseSecretsReadsFromDevZeroWithinTheLimit(t *testing.T) {
	fh, err := os.Open("/dev/zero")
	if err != nil {
		t.Skip(err)
	}
	defer fh.Close()
	n := memtest.Allocated(func() { _, err = ParseSecrets(fh) })
	t.Logf("/dev/zero as manifests: %v, %d bytes allocated", err, n)
	if !errors.Is(err, ErrTooLarge) || n > 8*MaxCredentialsFileBytes {
		t.Fatalf("err = %v after allocating %d bytes", err, n)
	}
}
