package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file or directory of a test layer.
type entry struct {
	name string
	data string
	mode int64
	uid  int
	gid  int
	dir  bool
}

func testLayer(t *testing.T, mt types.MediaType, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: time.Unix(1700000000, 0)}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// baseImage is an image laid out as Kargo's: /usr/local/bin/kargo in a
// lower layer (mode 0555, owned 0:1000 here, to see both kept), tini as
// the entrypoint, a user, an environment and labels.
func baseImage(t *testing.T, oci bool, arch string) v1.Image {
	t.Helper()
	manifestType, layerType := types.DockerManifestSchema2, types.DockerLayer
	if oci {
		manifestType, layerType = types.OCIManifestSchema1, types.OCILayer
	}
	img := mutate.MediaType(empty.Image, manifestType)
	if oci {
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	img, err := mutate.Append(img,
		mutate.Addendum{MediaType: layerType, Layer: testLayer(t, layerType,
			entry{name: "sbin/", dir: true, mode: 0o755},
			entry{name: "sbin/tini", data: "tini", mode: 0o755},
			entry{name: "etc/", dir: true, mode: 0o755},
			entry{name: "etc/os-release", data: "ID=test\n", mode: 0o644},
		)},
		mutate.Addendum{MediaType: layerType, Layer: testLayer(t, layerType,
			entry{name: "usr/", dir: true, mode: 0o755},
			entry{name: "usr/local/", dir: true, mode: 0o755},
			entry{name: "usr/local/bin/", dir: true, mode: 0o755},
			entry{name: "usr/local/bin/kargo", data: "the official kargo " + arch, mode: 0o555, gid: 1000},
			entry{name: "usr/local/bin/credential-helper", data: "helper", mode: 0o755},
		)},
		mutate.Addendum{MediaType: layerType, Layer: testLayer(t, layerType,
			entry{name: "usr/local/bin/grpc_health_probe", data: "probe", mode: 0o755},
		)},
	)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	cf.Config.Entrypoint = []string{"/sbin/tini", "--"}
	cf.Config.Cmd = []string{"/usr/local/bin/kargo"}
	cf.Config.User = "1000:0"
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "KARGO_TEST=1"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.source":  "https://github.com/akuity/kargo",
		"org.opencontainers.image.version": "v1.11.2",
		"org.opencontainers.image.title":   "kargo",
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func writeBinary(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kargo")
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func runTool(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), args, &out, authn.DefaultKeychain); err != nil {
		t.Fatalf("kargo-image %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// want is what the built image must be besides its base.
type want struct {
	binary   string
	labels   map[string]string
	platform string
	// dockerTarball: read back from a `docker save` tarball, which has
	// Docker media types whatever the base's.
	dockerTarball bool
}

// checkImage checks got against the base it was built on: the base's
// layers unchanged and one more holding only the new kargo (with the
// base's mode and owner), the base's runtime configuration, and the labels.
func checkImage(t *testing.T, got, base v1.Image, w want) {
	t.Helper()
	baseLayers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(baseLayers)+1 {
		t.Fatalf("%d layers, want the base's %d and one more", len(layers), len(baseLayers))
	}
	for i, bl := range baseLayers {
		bd, _ := bl.Digest()
		d, _ := layers[i].Digest()
		if bd != d {
			t.Errorf("layer %d is %s, the base's is %s", i, d, bd)
		}
	}
	if !w.dockerTarball {
		bmt, _ := base.MediaType()
		if mt, _ := got.MediaType(); mt != bmt {
			t.Errorf("manifest media type %s, the base's is %s", mt, bmt)
		}
		lmt, _ := layers[len(layers)-1].MediaType()
		blmt, _ := baseLayers[0].MediaType()
		if lmt != blmt {
			t.Errorf("new layer's media type %s, the base's layers are %s", lmt, blmt)
		}
	}

	// The new layer: exactly the one file.
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		b, _ := io.ReadAll(tr)
		if h.Name != "usr/local/bin/kargo" {
			continue
		}
		if string(b) != w.binary {
			t.Errorf("new /usr/local/bin/kargo holds %q, want %q", b, w.binary)
		}
		if h.Typeflag != tar.TypeReg || h.Mode != 0o555 || h.Uid != 0 || h.Gid != 1000 {
			t.Errorf("new /usr/local/bin/kargo: type %q mode %o owner %d:%d, want the base's regular file 0555 0:1000", h.Typeflag, h.Mode, h.Uid, h.Gid)
		}
	}
	rc.Close()
	if !reflect.DeepEqual(names, []string{"usr/local/bin/kargo"}) {
		t.Errorf("the new layer holds %q, want only usr/local/bin/kargo", names)
	}

	// The whole file system: the new kargo, everything else the base's.
	fsys := files(t, got)
	if fsys["usr/local/bin/kargo"] != w.binary {
		t.Errorf("the image's /usr/local/bin/kargo is %q", fsys["usr/local/bin/kargo"])
	}
	for p, data := range files(t, base) {
		if p != "usr/local/bin/kargo" && fsys[p] != data {
			t.Errorf("the image's /%s is %q, the base's %q", p, fsys[p], data)
		}
	}

	bcf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cf.Config.Entrypoint, bcf.Config.Entrypoint) || !reflect.DeepEqual(cf.Config.Cmd, bcf.Config.Cmd) ||
		cf.Config.User != bcf.Config.User || !reflect.DeepEqual(cf.Config.Env, bcf.Config.Env) {
		t.Errorf("config: entrypoint %q cmd %q user %q env %q; the base's: %q %q %q %q",
			cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.User, cf.Config.Env,
			bcf.Config.Entrypoint, bcf.Config.Cmd, bcf.Config.User, bcf.Config.Env)
	}
	if p := cf.Platform().String(); p != w.platform {
		t.Errorf("platform %s, want %s", p, w.platform)
	}
	if len(cf.History) != len(bcf.History)+1 || !strings.Contains(cf.History[len(cf.History)-1].CreatedBy, "kargo-image") {
		t.Errorf("history: %d entries, the base's %d; last %+v", len(cf.History), len(bcf.History), cf.History[len(cf.History)-1])
	}
	wantLabels := map[string]string{}
	for k, v := range bcf.Config.Labels {
		wantLabels[k] = v
	}
	for k, v := range w.labels {
		wantLabels[k] = v
	}
	if !reflect.DeepEqual(cf.Config.Labels, wantLabels) {
		t.Errorf("labels:\n got %v\nwant %v", cf.Config.Labels, wantLabels)
	}
}

// files is an image's flattened file system: path to content.
func files(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	m := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			m[strings.TrimPrefix(h.Name, "/")] = string(b)
		}
	}
}

func digest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestImageFromRegistry: a multi-platform base pulled from a registry, the
// binary's platform picked, the image pushed to the registry.
func TestImageFromRegistry(t *testing.T) {
	host := startRegistry(t)
	amd64, arm64 := baseImage(t, true, "amd64"), baseImage(t, true, "arm64")
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	baseRef := host + "/akuity/kargo:v1.11.2"
	ref, err := name.ParseReference(baseRef)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}

	bin := writeBinary(t, "kargo with the gha steps, arm64")
	target := host + "/example/kargo:v1.11.2-gha"
	out := runTool(t, "-base", baseRef, "-binary", bin, "-platform", "linux/arm64",
		"-image", target, "-version", "v0.4.0", "-revision", "0123abc")
	if !strings.HasPrefix(out, "pushed "+host+"/example/kargo@sha256:") {
		t.Errorf("output %q", out)
	}

	tref, err := name.ParseReference(target)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(tref)
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, got, arm64, want{
		binary:   "kargo with the gha steps, arm64",
		platform: "linux/arm64",
		labels: map[string]string{
			labelSource:     "https://github.com/kargo-gha/kargo-gha",
			labelVersion:    "v0.4.0",
			labelRevision:   "0123abc",
			labelBaseName:   baseRef,
			labelBaseDigest: digest(t, arm64),
		},
	})
	if !strings.Contains(out, digest(t, got)) {
		t.Errorf("output %q does not name the pushed digest %s", out, digest(t, got))
	}
}

// TestImageFromDockerTarball: a `docker save` base (Docker media types),
// the image written as a tarball.
func TestImageFromDockerTarball(t *testing.T) {
	dir := t.TempDir()
	base := baseImage(t, false, "amd64")
	baseFile := filepath.Join(dir, "kargo-v1.11.2.tar")
	tag, _ := name.NewTag("ghcr.io/akuity/kargo:v1.11.2")
	if err := tarball.WriteToFile(baseFile, tag, base); err != nil {
		t.Fatal(err)
	}
	bin := writeBinary(t, "kargo with the gha steps")
	outFile := filepath.Join(dir, "out", "kargo-gha.tar")
	out := runTool(t, "-base", baseFile, "-binary", bin, "-platform", "linux/amd64",
		"-out", outFile, "-image", "registry.example.com/kargo:v1.11.2-gha")
	if !strings.HasPrefix(out, "wrote "+outFile+" (registry.example.com/kargo:v1.11.2-gha, linux/amd64, sha256:") {
		t.Errorf("output %q", out)
	}
	got, err := tarball.ImageFromPath(outFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(outFile) })
	if err != nil || len(m) != 1 || !reflect.DeepEqual(m[0].RepoTags, []string{"registry.example.com/kargo:v1.11.2-gha"}) {
		t.Errorf("tarball manifest %+v, %v", m, err)
	}
	checkImage(t, got, base, want{
		binary:        "kargo with the gha steps",
		platform:      "linux/amd64",
		dockerTarball: true,
		labels: map[string]string{
			labelSource:     "https://github.com/kargo-gha/kargo-gha",
			labelVersion:    "dev",
			labelBaseName:   "ghcr.io/akuity/kargo:v1.11.2",
			labelBaseDigest: digest(t, base),
		},
	})
	// The base's creation time, so the same inputs give the same image.
	if cf, _ := got.ConfigFile(); !cf.Created.Equal(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("created %v, want the base's", cf.Created)
	}
}

// TestImageFromOCIArchive: an OCI layout packed in a tar (skopeo's
// oci-archive), the platform read from the binary's ELF header (this test's
// own executable), SOURCE_DATE_EPOCH as the time, and the same image twice.
func TestImageFromOCIArchive(t *testing.T) {
	dir := t.TempDir()
	base := baseImage(t, true, runtime.GOARCH)
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(base, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1.11.2"})); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "kargo-oci.tar")
	tarDir(t, filepath.Join(dir, "layout"), archive)

	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600") // 2026-01-01
	var digests []string
	for i := range 2 {
		outFile := filepath.Join(dir, "out", "kargo-gha.tar")
		runTool(t, "-base", archive, "-binary", bin, "-out", outFile, "-base-name", "ghcr.io/akuity/kargo:v1.11.2")
		got, err := tarball.ImageFromPath(outFile, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			checkImage(t, got, base, want{
				binary:        string(self),
				platform:      "linux/" + runtime.GOARCH,
				dockerTarball: true,
				labels: map[string]string{
					labelSource:     "https://github.com/kargo-gha/kargo-gha",
					labelVersion:    "dev",
					labelBaseName:   "ghcr.io/akuity/kargo:v1.11.2",
					labelBaseDigest: digest(t, base),
				},
			})
			if cf, _ := got.ConfigFile(); !cf.Created.Equal(time.Unix(1767225600, 0)) {
				t.Errorf("created %v, want SOURCE_DATE_EPOCH", cf.Created)
			}
		}
		digests = append(digests, digest(t, got))
	}
	if digests[0] != digests[1] {
		t.Errorf("the same inputs made %s, then %s", digests[0], digests[1])
	}
}

// tarDir packs a directory's files into a tar.
func tarDir(t *testing.T, dir, file string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestImageRefuses: what is not a Kargo base for this binary, and missing
// flags, are errors, and nothing is pushed.
func TestImageRefuses(t *testing.T) {
	host := startRegistry(t)
	bin := writeBinary(t, "kargo")
	push := func(t *testing.T, img v1.Image, repo string) string {
		ref, err := name.ParseReference(host + "/" + repo)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		return ref.String()
	}
	amd64 := push(t, baseImage(t, false, "amd64"), "kargo:amd64")
	deleted, err := mutate.Append(baseImage(t, false, "amd64"), mutate.Addendum{
		MediaType: types.DockerLayer,
		Layer:     testLayer(t, types.DockerLayer, entry{name: "usr/local/bin/.wh.kargo"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	whiteout := push(t, deleted, "kargo:whiteout")
	noKargo := push(t, mutate.MediaType(empty.Image, types.DockerManifestSchema2), "other:latest")

	for _, c := range []struct {
		name string
		args []string
		err  string
	}{
		{"no base", []string{"-image", host + "/example/out:v1"}, "-base is required"},
		{"no output", []string{"-base", amd64}, "give -image to push, or -out"},
		{"another platform", []string{"-base", amd64, "-platform", "linux/arm64", "-image", host + "/example/out:v1"}, "the base image is for linux/amd64, the binary for linux/arm64"},
		{"no kargo", []string{"-base", noKargo, "-platform", "linux/amd64", "-image", host + "/example/out:v1"}, "has no /usr/local/bin/kargo"},
		{"kargo deleted", []string{"-base", whiteout, "-platform", "linux/amd64", "-image", host + "/example/out:v1"}, "has no /usr/local/bin/kargo"},
		{"not an executable", []string{"-base", amd64, "-image", host + "/example/out:v1"}, "is not a Linux executable"},
		{"missing tarball", []string{"-base", filepath.Join(t.TempDir(), "base.tar"), "-platform", "linux/amd64", "-image", host + "/example/out:v1"}, "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := run(context.Background(), append(c.args, "-binary", bin), io.Discard, authn.DefaultKeychain)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want one saying %q", err, c.err)
			}
		})
	}
	if _, err := remote.Head(must(name.ParseReference(host + "/example/out:v1"))); err == nil {
		t.Error("an image was pushed")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestImageFromDockerSave: what `docker save` writes since Docker 25, an
// OCI layout (whose manifest, so the base.digest label, is the registry's)
// beside a manifest.json, the name in containerd's annotation; and a layout
// that records only a tag: no base.name label, and a note saying so.
func TestImageFromDockerSave(t *testing.T) {
	for _, c := range []struct {
		name        string
		annotations map[string]string
		baseName    string
	}{
		{"docker 25", map[string]string{
			"io.containerd.image.name":          "ghcr.io/akuity/kargo:v1.11.2",
			"org.opencontainers.image.ref.name": "v1.11.2",
		}, "ghcr.io/akuity/kargo:v1.11.2"},
		{"tag only", map[string]string{"org.opencontainers.image.ref.name": "v1.11.2"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			base := baseImage(t, true, "amd64")
			lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
			if err != nil {
				t.Fatal(err)
			}
			if err := lp.AppendImage(base, layout.WithAnnotations(c.annotations)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "layout", "manifest.json"), []byte(`[{"Config":"blobs/sha256/0","RepoTags":["elsewhere:latest"],"Layers":[]}]`), 0o644); err != nil {
				t.Fatal(err)
			}
			archive := filepath.Join(dir, "saved.tar")
			tarDir(t, filepath.Join(dir, "layout"), archive)
			outFile := filepath.Join(dir, "kargo-gha.tar")
			out := runTool(t, "-base", archive, "-binary", writeBinary(t, "gha"), "-platform", "linux/amd64", "-out", outFile)
			if note := strings.Contains(out, "records no image name"); note != (c.baseName == "") {
				t.Errorf("output %q", out)
			}
			got, err := tarball.ImageFromPath(outFile, nil)
			if err != nil {
				t.Fatal(err)
			}
			labels := map[string]string{
				labelSource:     "https://github.com/kargo-gha/kargo-gha",
				labelVersion:    "dev",
				labelBaseDigest: digest(t, base),
			}
			if c.baseName != "" {
				labels[labelBaseName] = c.baseName
			}
			checkImage(t, got, base, want{binary: "gha", platform: "linux/amd64", dockerTarball: true, labels: labels})
		})
	}
}
