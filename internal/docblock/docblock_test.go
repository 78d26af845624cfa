package docblock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSync(t *testing.T) {
	p := filepath.Join(t.TempDir(), "doc.md")
	_ = os.WriteFile(p, []byte("intro\n<!-- t:start -->\nold\n<!-- t:end -->\noutro\n"), 0o644)
	if err := Sync(p, "t", "new\n", false); err == nil || !strings.Contains(err.Error(), "out of date") {
		t.Fatalf("a stale block passed: %v", err)
	}
	if err := Sync(p, "t", "new\n", true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "intro\n<!-- t:start -->\nnew\n<!-- t:end -->\noutro\n" {
		t.Fatalf("rewritten as %q", b)
	}
	if err := Sync(p, "t", "new\n", false); err != nil {
		t.Fatal(err)
	}
	if err := Sync(p, "missing", "x", false); err == nil {
		t.Fatal("missing markers passed")
	}
}
