package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
)

func TestCredentialsFileIsBounded(t *testing.T) {
	big := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := os.WriteFile(big, []byte(strings.Repeat("#", credentials.MaxCredentialsFileBytes+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"/dev/zero", big} {
		_, err := newLookups(nil, credentialFlags{File: file})
		if !errors.Is(err, credentials.ErrTooLarge) || !failure.IsFinal(err) {
			t.Fatalf("%s: err = %v; want a final too-large error", file, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "--credentials-file") || !strings.Contains(msg, file) {
			t.Fatalf("%s: %q names neither the flag nor the file", file, msg)
		}
	}
}
