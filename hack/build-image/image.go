package main

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

const (
	// nonRootUID is the UID Kargo runs custom-step containers as (and
	// distroless's "nonroot"); the image is built for it.
	nonRootUID = 65532
	// binaryPath is where the command lives in the image.
	binaryPath = "/kargo-gha"
	// caPath is where Go (and most tools) look for the CA bundle on Linux.
	caPath = "/etc/ssl/certs/ca-certificates.crt"
)

// epoch is the timestamp of every file and of the image, so that the same
// inputs give the same image digest.
var epoch = time.Unix(0, 0).UTC()

type imageSpec struct {
	Binary         string
	CACertificates string
	Arch           string
	Version        string
}

// buildBinary compiles a static kargo-gha for linux/arch.
func buildBinary(arch, version string) (string, error) {
	dir, err := os.MkdirTemp("", "kargo-gha-image-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kargo-gha")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", bin, "./cmd/kargo-gha")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// repoRoot finds the repository root from this source file's location, so
// the builder works from any directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// assemble puts the binary, the CA bundle and the user database in one
// layer on an empty base and sets the runtime configuration.
func assemble(spec imageSpec) (v1.Image, error) {
	bin, err := os.ReadFile(spec.Binary)
	if err != nil {
		return nil, err
	}
	ca, err := caBundle(spec.CACertificates)
	if err != nil {
		return nil, err
	}
	layerTar, err := layer([]file{
		{path: "etc/", mode: 0o755, dir: true},
		{path: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRootUID, nonRootUID))},
		{path: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonRootUID))},
		{path: "etc/ssl/", mode: 0o755, dir: true},
		{path: "etc/ssl/certs/", mode: 0o755, dir: true},
		{path: caPath[1:], mode: 0o644, data: ca},
		{path: "home/", mode: 0o755, dir: true},
		{path: "home/nonroot/", mode: 0o700, dir: true, uid: nonRootUID},
		{path: "tmp/", mode: 0o1777, dir: true},
		{path: binaryPath[1:], mode: 0o755, data: bin},
	})
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", spec.Arch, v1.Time{Time: epoch}
	cf.Config.Entrypoint = []string{binaryPath}
	cf.Config.User = fmt.Sprintf("%d:%d", nonRootUID, nonRootUID)
	cf.Config.WorkingDir = "/home/nonroot"
	cf.Config.Env = []string{"PATH=/", "SSL_CERT_FILE=" + caPath}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "kargo-gha",
		"org.opencontainers.image.description": "GitHub Actions promotion steps for Kargo: dispatch a workflow, wait for its run",
		"org.opencontainers.image.version":     spec.Version,
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
	return mutate.ConfigFile(img, cf)
}

type file struct {
	path string
	mode int64
	data []byte
	dir  bool
	uid  int
}

func layer(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: f.mode, ModTime: epoch, Uid: f.uid, Gid: f.uid, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// write saves the image as a tarball that docker load and crane accept.
func write(img v1.Image, tag, out string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(out, ref, img)
}

// caBundle is the CA bundle the image carries: the file given, or by
// default Mozilla's NSS roots from the pinned golang.org/x/crypto module, so
// that the image is the same whatever machine builds it. Roots with a
// distrust-after date are left out: a PEM bundle cannot carry the date.
func caBundle(file string) ([]byte, error) {
	if file != "" {
		ca, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the CA bundle -ca-certificates %s: %w", file, err)
		}
		return ca, nil
	}
	var b bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}
