package main

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"debug/elf"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImage builds the image the way CI and releases do and checks what a
// user of it relies on: the static binary at the entrypoint, the CA bundle,
// the non-root user, and that the binary runs.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and the image")
	}
	bin, err := buildBinary(runtime.GOARCH, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(filepath.Dir(bin))
	img, err := assemble(imageSpec{Binary: bin, Arch: runtime.GOARCH, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	if err := write(img, "ghcr.io/kargo-gha/kargo-gha:test", out); err != nil {
		t.Fatal(err)
	}

	// Read back what was written, not what is in memory.
	loaded, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := loaded.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/kargo-gha" || cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Fatalf("config: user %q entrypoint %v platform %s/%s", cf.Config.User, cf.Config.Entrypoint, cf.OS, cf.Architecture)
	}
	files := map[string][]byte{}
	modes := map[string]int64{}
	layers, _ := loaded.Layers()
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			files["/"+h.Name], modes["/"+h.Name] = b, h.Mode
		}
		rc.Close()
	}
	binary := files["/kargo-gha"]
	if len(binary) == 0 || modes["/kargo-gha"]&0o111 == 0 {
		t.Fatal("no executable /kargo-gha in the image")
	}
	// The pinned Mozilla roots, whatever machine builds the image: they
	// parse, and the roots GitHub's certificates chain to are there.
	pool := x509.NewCertPool()
	if n := bytes.Count(files["/etc/ssl/certs/ca-certificates.crt"], []byte("BEGIN CERTIFICATE")); n < 100 || !pool.AppendCertsFromPEM(files["/etc/ssl/certs/ca-certificates.crt"]) {
		t.Fatalf("%d CA certificates in the image", n)
	}
	for _, cn := range []string{"USERTrust ECC Certification Authority", "DigiCert Global Root G2"} {
		if !containsSubject(files["/etc/ssl/certs/ca-certificates.crt"], cn) {
			t.Errorf("the CA bundle lacks %q", cn)
		}
	}
	if !strings.Contains(string(files["/etc/passwd"]), ":65532:65532:") {
		t.Fatalf("no user 65532 in /etc/passwd: %q", files["/etc/passwd"])
	}
	// Static: no ELF interpreter, so it runs on an empty base.
	ef, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked")
		}
	}
	// And it is the command: run the copy taken out of the image.
	extracted := filepath.Join(t.TempDir(), "kargo-gha")
	if err := os.WriteFile(extracted, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(extracted, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(got), "kargo-gha test") {
		t.Fatalf("kargo-gha version: %v: %s", err, got)
	}
	if size, _ := loaded.Size(); size == 0 {
		t.Fatal("empty manifest")
	}
}

func containsSubject(pemBundle []byte, cn string) bool {
	for rest := pemBundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return false
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil && c.Subject.CommonName == cn {
			return true
		}
	}
}
