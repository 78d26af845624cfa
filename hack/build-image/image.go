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

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
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

// The OCI annotation keys, also set as labels (docker inspect shows
// labels; registries and scanners read annotations).
const (
	labelSource      = "org.opencontainers.image.source"
	labelRevision    = "org.opencontainers.image.revision"
	labelCreated     = "org.opencontainers.image.created"
	labelVersion     = "org.opencontainers.image.version"
	labelTitle       = "org.opencontainers.image.title"
	labelDescription = "org.opencontainers.image.description"
	labelLicenses    = "org.opencontainers.image.licenses"
)

// metadata is what the image says about itself. Created is the time of
// every file and of the image (SOURCE_DATE_EPOCH or the commit's time), so
// that the same inputs give the same digest.
type metadata struct {
	Source   string
	Revision string
	Version  string
	Created  time.Time
}

// annotations are the OCI annotations (and labels) of the image and index.
func (m metadata) annotations() map[string]string {
	a := map[string]string{
		labelSource:      m.Source,
		labelCreated:     m.Created.UTC().Format(time.RFC3339),
		labelVersion:     m.Version,
		labelTitle:       "kargo-gha",
		labelDescription: "GitHub Actions promotion steps for Kargo: dispatch a workflow, wait for its run",
		labelLicenses:    "Apache-2.0",
	}
	if m.Revision != "" {
		a[labelRevision] = m.Revision
	}
	return a
}

type imageSpec struct {
	Binary         string
	CACertificates string
	Platform       v1.Platform
	Meta           metadata
}

// buildBinary compiles a static kargo-gha for linux/arch into a new
// temporary directory (the caller removes it).
func buildBinary(arch, version string) (string, error) {
	dir, err := os.MkdirTemp("", "kargo-gha-image-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kargo-gha")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", bin, "./cmd/kargo-gha")
	cmd.Dir = repoRoot()
	// GOFLAGS is cleared so that a caller's -mod or -buildvcs cannot change
	// the binary; -trimpath keeps build paths out of it.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=")
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
	created := spec.Meta.Created.UTC()
	layerTar, err := layer(created, []file{
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
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant, cf.Created = spec.Platform.OS, spec.Platform.Architecture, spec.Platform.Variant, v1.Time{Time: created}
	cf.Config.Entrypoint = []string{binaryPath}
	cf.Config.User = fmt.Sprintf("%d:%d", nonRootUID, nonRootUID)
	cf.Config.WorkingDir = "/home/nonroot"
	cf.Config.Env = []string{"PATH=/", "SSL_CERT_FILE=" + caPath}
	cf.Config.Labels = spec.Meta.annotations()
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, spec.Meta.annotations()).(v1.Image), nil
}

type file struct {
	path string
	mode int64
	data []byte
	dir  bool
	uid  int
}

func layer(mtime time.Time, files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: f.mode, ModTime: mtime, Uid: f.uid, Gid: f.uid, Format: tar.FormatPAX}
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
