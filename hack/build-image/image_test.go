package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// anonymous is a keychain that never reads the machine's docker config.
type anonymous struct{}

func (anonymous) Resolve(authn.Resource) (authn.Authenticator, error) { return authn.Anonymous, nil }

// TestImage builds the image the way `make image IMAGE=…` does (both
// platforms, the tarball and a push to an in-process registry) and checks
// what a user of it relies on, reading what was written rather than what is
// in memory: one index with both platforms, the OCI labels, the static
// binary at the entrypoint for the right machine, the CA bundle, the
// non-root user, an SBOM per platform that lists the binary's modules, and
// that a rebuild gives the same bytes.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and the image")
	}
	reg := httptest.NewServer(registry.New(registry.Logger(quietLogger())))
	defer reg.Close()
	pushed := strings.TrimPrefix(reg.URL, "http://") + "/kargo-gha:test"
	t.Setenv("SOURCE_DATE_EPOCH", "1796199578")
	const rev = "0123456789abcdef0123456789abcdef01234567"
	out := filepath.Join(t.TempDir(), "image.tar")
	var stdout bytes.Buffer
	layoutDir := filepath.Join(t.TempDir(), "oci")
	args := []string{"-out", out, "-layout", layoutDir, "-tag", "ghcr.io/kargo-gha/kargo-gha:test", "-image", pushed, "-version", "v9.8.7", "-revision", rev}
	if err := run(context.Background(), args, &stdout, anonymous{}); err != nil {
		t.Fatal(err)
	}
	t.Log(stdout.String())

	idx, refName := readLayoutTarball(t, out)
	if refName != "test" {
		t.Errorf("the tarball names its image %q, want the tag test", refName)
	}
	wantLabels := map[string]string{
		labelSource: "https://github.com/kargo-gha/kargo-gha", labelRevision: rev, labelVersion: "v9.8.7",
		labelCreated: "2026-12-02T08:19:38Z", labelTitle: "kargo-gha", labelLicenses: "Apache-2.0",
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	checkLabels(t, "index annotations", im.Annotations, wantLabels)

	images := map[string]v1.Hash{}
	attests := map[string]v1.Hash{} // image digest → attestation manifest
	for _, d := range im.Manifests {
		if d.Annotations[annotationReferenceType] == attestationManifest {
			attests[d.Annotations[annotationReferenceDigest]] = d.Digest
			continue
		}
		images[d.Platform.String()] = d.Digest
	}
	if len(images) != 2 || images["linux/amd64"] == (v1.Hash{}) || images["linux/arm64"] == (v1.Hash{}) || len(attests) != 2 {
		t.Fatalf("index: images %v, attestations %v; want linux/amd64 and linux/arm64, each with an SBOM", images, attests)
	}
	for platform, digest := range images {
		t.Run(platform, func(t *testing.T) {
			img, err := idx.Image(digest)
			if err != nil {
				t.Fatal(err)
			}
			binary := checkPlatformImage(t, img, platform, wantLabels)
			att, ok := attests[digest.String()]
			if !ok {
				t.Fatal("no SBOM attestation for this image")
			}
			checkSBOM(t, idx, att, digest, binary)
		})
	}

	// The registry holds the same index, digest for digest.
	remoteIdx, err := remote.Index(mustRef(t, pushed))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if got, _ := remoteIdx.Digest(); got != want {
		t.Errorf("pushed index %s, tarball index %s", got, want)
	}
	if !strings.Contains(stdout.String(), "pushed "+pushed[:strings.LastIndex(pushed, ":")]+"@"+want.String()) {
		t.Errorf("build-image did not name what it pushed: %q", stdout.String())
	}

	// Reproducible: the same inputs give the same tarball, byte for byte.
	// And a second build into the same layout directory replaces the
	// first: one image under one name, never two.
	again := filepath.Join(t.TempDir(), "again.tar")
	args = []string{"-out", again, "-layout", layoutDir, "-tag", "ghcr.io/kargo-gha/kargo-gha:test", "-version", "v9.8.7", "-revision", rev}
	if err := run(context.Background(), args, io.Discard, anonymous{}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same inputs differ")
	}
	root, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := root.IndexManifest()
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest != want {
		t.Errorf("the layout directory lists %+v, want the one index %s", rm.Manifests, want)
	}
}

// checkPlatformImage checks one platform's image and returns its binary.
func checkPlatformImage(t *testing.T, img v1.Image, platform string, wantLabels map[string]string) []byte {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.OS + "/" + cf.Architecture; got != platform {
		t.Errorf("config platform %s", got)
	}
	if cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/kargo-gha" {
		t.Errorf("config: user %q entrypoint %v", cf.Config.User, cf.Config.Entrypoint)
	}
	checkLabels(t, "labels", cf.Config.Labels, wantLabels)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	checkLabels(t, "manifest annotations", m.Annotations, wantLabels)
	files, modes := imageFiles(t, img)

	binary := files["/kargo-gha"]
	if len(binary) == 0 || modes["/kargo-gha"]&0o111 == 0 {
		t.Fatal("no executable /kargo-gha in the image")
	}
	// The pinned Mozilla roots, whatever machine builds the image: they
	// parse, and the roots GitHub's certificates chain to are there.
	ca := files["/etc/ssl/certs/ca-certificates.crt"]
	pool := x509.NewCertPool()
	if n := bytes.Count(ca, []byte("BEGIN CERTIFICATE")); n < 100 || !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("%d CA certificates in the image", n)
	}
	for _, cn := range []string{"USERTrust ECC Certification Authority", "DigiCert Global Root G2"} {
		if !containsSubject(ca, cn) {
			t.Errorf("the CA bundle lacks %q", cn)
		}
	}
	if !strings.Contains(string(files["/etc/passwd"]), ":65532:65532:") {
		t.Errorf("no user 65532 in /etc/passwd: %q", files["/etc/passwd"])
	}
	// Static (no ELF interpreter: it runs on an empty base) and for this
	// platform's machine.
	ef, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}[platform]
	if ef.Machine != want {
		t.Errorf("the binary is for %s, want %s", ef.Machine, want)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked")
		}
	}
	// The host's binary is the command: run the copy taken out of the image.
	if platform == "linux/"+runtime.GOARCH && runtime.GOOS == "linux" {
		extracted := filepath.Join(t.TempDir(), "kargo-gha")
		if err := os.WriteFile(extracted, binary, 0o755); err != nil {
			t.Fatal(err)
		}
		got, err := exec.Command(extracted, "version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(got), "kargo-gha v9.8.7") {
			t.Errorf("kargo-gha version: %v: %s", err, got)
		}
	}
	return binary
}

// checkSBOM reads the attestation for the image: an in-toto statement about
// that manifest whose CycloneDX SBOM lists every module Go linked into the
// binary, at the version linked.
func checkSBOM(t *testing.T, idx v1.ImageIndex, att, imageDigest v1.Hash, binary []byte) {
	t.Helper()
	img, err := idx.Image(att)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	layers, _ := img.Layers()
	if len(layers) != 1 || m.Layers[0].MediaType != inTotoMediaType || m.Layers[0].Annotations[annotationPredicateType] != cycloneDXPredicate {
		t.Fatalf("attestation layers: %+v", m.Layers)
	}
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	var st struct {
		Type          string          `json:"_type"`
		PredicateType string          `json:"predicateType"`
		Subject       []inTotoSubject `json:"subject"`
		Predicate     cdx.BOM         `json:"predicate"`
	}
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Type != inTotoStatement || st.PredicateType != cycloneDXPredicate || len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] != imageDigest.Hex {
		t.Fatalf("statement %s %s about %+v, want the image %s", st.Type, st.PredicateType, st.Subject, imageDigest)
	}
	bom := st.Predicate
	if bom.BOMFormat != "CycloneDX" || bom.Metadata == nil || bom.Metadata.Component == nil || bom.Metadata.Component.Name != "github.com/kargo-gha/kargo-gha" {
		t.Fatalf("SBOM: format %q metadata %+v", bom.BOMFormat, bom.Metadata)
	}
	listed := map[string]string{}
	if bom.Components != nil {
		for _, c := range *bom.Components {
			listed[c.Name] = c.Version
		}
	}
	tmp := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(tmp, binary, 0o644); err != nil {
		t.Fatal(err)
	}
	bi, err := buildinfo.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.Deps) < 5 {
		t.Fatalf("the binary records %d modules", len(bi.Deps))
	}
	for _, d := range bi.Deps {
		if listed[d.Path] != d.Version {
			t.Errorf("SBOM lists %s at %q, the binary links %s", d.Path, listed[d.Path], d.Version)
		}
	}
	if listed["github.com/spf13/cobra"] == "" || listed["std"] != bi.GoVersion {
		t.Errorf("the SBOM lists cobra at %q and the standard library at %q (the binary: %s)", listed["github.com/spf13/cobra"], listed["std"], bi.GoVersion)
	}
	if v := bom.Metadata.Component.Version; v != "v9.8.7" {
		t.Errorf("SBOM main module version %q, want the release's", v)
	}
}

// TestArchRefused: an architecture the builder cannot build, or a platform
// asked twice, is refused before anything is built or written.
func TestArchRefused(t *testing.T) {
	out := filepath.Join(t.TempDir(), "image.tar")
	for arch, want := range map[string]string{
		"riscv64":                 `-arch "riscv64": cannot build for this architecture (supported: amd64, arm64)`,
		"amd64,s390x":             `-arch "s390x": cannot build`,
		"windows/amd64":           `-arch "windows/amd64": the image is for linux only`,
		"arm64,linux/arm64":       `-arch "linux/arm64": named twice`,
		",":                       `-arch is empty`,
		"linux/amd64,linux/arm64": "",
	} {
		_, err := parseFlags([]string{"-out", out, "-arch", arch})
		if want == "" {
			if err != nil {
				t.Errorf("-arch %s: %v", arch, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("-arch %s: %v, want %q", arch, err, want)
		}
		if err := run(context.Background(), []string{"-out", out, "-arch", arch}, io.Discard, anonymous{}); err == nil {
			t.Errorf("-arch %s: built", arch)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("-arch %s: wrote %s", arch, out)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	o, err := parseFlags([]string{"-image", "registry.example.com/kargo-gha:v1", "-out", ""})
	if err != nil {
		t.Fatal(err)
	}
	if o.Tag.Name() != "registry.example.com/kargo-gha:v1" || len(o.Platforms) != 2 || !o.Meta.Created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("options %+v", o)
	}
	if _, err := parseFlags([]string{"-out", ""}); err == nil || !strings.Contains(err.Error(), "-image") {
		t.Errorf("no output: %v", err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, err := parseFlags(nil); err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Errorf("bad SOURCE_DATE_EPOCH: %v", err)
	}
}

func checkLabels(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got[k], v)
		}
	}
}

// readLayoutTarball unpacks an OCI layout tarball and returns the index its
// index.json names, with its ref.name.
func readLayoutTarball(t *testing.T, path string) (v1.ImageIndex, string) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, _ := io.ReadAll(tr)
		if err := os.WriteFile(target, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Manifests) != 1 {
		t.Fatalf("index.json lists %d entries, want the one index", len(rm.Manifests))
	}
	idx, err := root.ImageIndex(rm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return idx, rm.Manifests[0].Annotations[annotationRefName]
}

func imageFiles(t *testing.T, img v1.Image) (map[string][]byte, map[string]int64) {
	t.Helper()
	files := map[string][]byte{}
	modes := map[string]int64{}
	layers, _ := img.Layers()
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
	return files, modes
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
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

func quietLogger() *log.Logger { return log.New(io.Discard, "", 0) }
