package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// kargoPath is where Kargo's image keeps its one binary (every component
// runs it: `kargo controller`, `kargo api`, ...).
const kargoPath = "usr/local/bin/kargo"

// The OCI labels this image sets over the base's
// (https://github.com/opencontainers/image-spec/blob/main/annotations.md).
const (
	labelSource     = "org.opencontainers.image.source"
	labelVersion    = "org.opencontainers.image.version"
	labelRevision   = "org.opencontainers.image.revision"
	labelBaseName   = "org.opencontainers.image.base.name"
	labelBaseDigest = "org.opencontainers.image.base.digest"
)

// base is the image being built on and what is known about where it came
// from.
type base struct {
	image v1.Image
	// name is the reference it was pulled by or recorded under, or "".
	name string
}

// spec is everything the new image is made of besides its base.
type spec struct {
	// Binary is the kargo binary to put at /usr/local/bin/kargo.
	Binary string
	// Source, Version and Revision are the values of the OCI labels.
	Source, Version, Revision string
	// BaseName replaces the base's recorded name in the base.name label.
	BaseName string
	// Created is the new layer's and the image's time; zero keeps the
	// base's creation time, so that the same inputs make the same image.
	Created time.Time
}

// binaryPlatform is the platform a Linux ELF executable runs on.
func binaryPlatform(file string) (*v1.Platform, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%s is not a Linux executable (%v); give -platform", file, err)
	}
	defer f.Close()
	arch := map[elf.Machine]string{
		elf.EM_X86_64:  "amd64",
		elf.EM_AARCH64: "arm64",
		elf.EM_386:     "386",
		elf.EM_ARM:     "arm",
		elf.EM_PPC64:   "ppc64le",
		elf.EM_S390:    "s390x",
		elf.EM_RISCV:   "riscv64",
	}[f.Machine]
	if arch == "" {
		return nil, fmt.Errorf("%s: unknown ELF machine %v; give -platform", file, f.Machine)
	}
	return &v1.Platform{OS: "linux", Architecture: arch}, nil
}

// loadBase opens the base image for platform: a path names a docker save
// or OCI archive tarball, or an OCI layout directory; anything else is a
// reference pulled from its registry.
func loadBase(ctx context.Context, ref string, platform v1.Platform, keychain authn.Keychain) (*base, error) {
	if st, err := os.Stat(ref); err == nil {
		if st.IsDir() {
			return fromLayout(ref, platform)
		}
		return fromTarball(ref, platform)
	} else if strings.HasSuffix(ref, ".tar") || strings.HasPrefix(ref, ".") || strings.HasPrefix(ref, "/") {
		return nil, fmt.Errorf("base %s: %w", ref, err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("base %q is neither a file nor an image reference: %w", ref, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain), remote.WithPlatform(platform))
	if err != nil {
		return nil, fmt.Errorf("pulling base %s: %w", r, err)
	}
	return &base{image: img, name: r.Name()}, nil
}

// fromTarball reads an OCI image layout packed in a tar (an oci-archive,
// or what `docker save` writes since Docker 25, whose layout keeps the
// registry's manifest and so its digest), or else a `docker save` tarball
// of the older kind (manifest.json only: its manifest, and so the base.digest
// label, is rebuilt from the layers and is not the registry's).
func fromTarball(file string, platform v1.Platform) (*base, error) {
	isLayout, err := hasEntry(file, "oci-layout")
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", file, err)
	}
	if isLayout {
		dir, err := os.MkdirTemp("", "kargo-image-base-")
		if err != nil {
			return nil, err
		}
		// The layout's blobs are read while the image is written, so the
		// directory lives as long as the process (main removes it).
		tempDirs = append(tempDirs, dir)
		if err := untar(file, dir); err != nil {
			return nil, fmt.Errorf("base %s: %w", file, err)
		}
		return fromLayout(dir, platform)
	}
	opener := func() (io.ReadCloser, error) { return os.Open(file) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("base %s is neither an OCI archive nor a docker save tarball: %w", file, err)
	}
	if len(m) != 1 {
		return nil, fmt.Errorf("base %s holds %d images; give a tarball of one", file, len(m))
	}
	img, err := tarball.Image(opener, nil)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", file, err)
	}
	b := &base{image: img}
	if len(m[0].RepoTags) > 0 {
		b.name = m[0].RepoTags[0]
	}
	return b, nil
}

// hasEntry reports whether the tar file has an entry named name at its top.
func hasEntry(file, name string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if path.Clean(h.Name) == name {
			return true, nil
		}
	}
}

// tempDirs are removed when the program ends.
var tempDirs []string

// fromLayout picks the image for platform in an OCI image layout.
func fromLayout(dir string, platform v1.Platform) (*base, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("base %s is not an OCI image layout: %w", dir, err)
	}
	b, err := pick(idx, platform, "")
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", dir, err)
	}
	return b, nil
}

// pick finds the one image for platform in an index, looking into nested
// indexes, and the name its descriptor records.
func pick(idx v1.ImageIndex, platform v1.Platform, refName string) (*base, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []*base
	for _, d := range m.Manifests {
		// The image's name: containerd's (and Docker's) annotation, or the
		// OCI one when it is a reference rather than a bare tag.
		n := refName
		if a := d.Annotations["io.containerd.image.name"]; a != "" {
			n = a
		} else if a := d.Annotations["org.opencontainers.image.ref.name"]; strings.ContainsAny(a, "/:") {
			n = a
		}
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			b, err := pick(child, platform, n)
			if err != nil {
				return nil, err
			}
			found = append(found, b)
		case d.MediaType.IsImage():
			if d.Platform != nil && !d.Platform.Satisfies(platform) {
				continue
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			if d.Platform == nil {
				cf, err := img.ConfigFile()
				if err != nil {
					return nil, err
				}
				if p := cf.Platform(); p != nil && !p.Satisfies(platform) {
					continue
				}
			}
			found = append(found, &base{image: img, name: n})
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no image for %s", platform)
	case 1:
		return found[0], nil
	default:
		return nil, fmt.Errorf("%d images for %s; give a layout of one", len(found), platform)
	}
}

// untar unpacks a tar of plain files and directories into dir.
func untar(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := path.Clean(h.Name)
		if !filepath.IsLocal(p) {
			return fmt.Errorf("entry %q leaves the archive", h.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.Create(target)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		}
	}
}

// findFile returns the header of the file at p (no leading slash) as the
// image's layers leave it, or an error if they leave none: the layers are
// read from the top, so only as many as needed are fetched.
func findFile(img v1.Image, p string) (*tar.Header, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	dir, _ := path.Split(p)
	for i := len(layers) - 1; i >= 0; i-- {
		h, gone, err := findInLayer(layers[i], p, dir)
		if err != nil {
			return nil, fmt.Errorf("reading layer %d: %w", i, err)
		}
		if h != nil {
			return h, nil
		}
		if gone {
			break
		}
	}
	return nil, fmt.Errorf("the base image has no /%s: not a Kargo image", p)
}

// findInLayer looks for p in one layer: its header, or gone when the layer
// deletes it (a whiteout of it or an opaque directory above it).
func findInLayer(l v1.Layer, p, dir string) (h *tar.Header, gone bool, err error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, gone, nil
		}
		if err != nil {
			return nil, false, err
		}
		n := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		switch {
		case n == p:
			if hdr.Typeflag != tar.TypeReg {
				return nil, false, fmt.Errorf("/%s is not a regular file (type %q)", p, hdr.Typeflag)
			}
			return hdr, false, nil
		case path.Base(n) == ".wh..wh..opq":
			if strings.HasPrefix(dir, path.Dir(n)+"/") {
				gone = true
			}
		case strings.HasPrefix(path.Base(n), ".wh."):
			deleted := path.Join(path.Dir(n), strings.TrimPrefix(path.Base(n), ".wh."))
			if p == deleted || strings.HasPrefix(p, deleted+"/") {
				gone = true
			}
		}
	}
}

// build puts the binary over the base's /usr/local/bin/kargo as one new
// layer, with the file's mode and owner as the base has them, and keeps the
// base's configuration (entrypoint, command, user, environment, labels)
// but for the OCI labels saying what the image now is.
func build(b *base, s spec) (v1.Image, error) {
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, err
	}
	old, err := findFile(b.image, kargoPath)
	if err != nil {
		return nil, err
	}
	baseCF, err := b.image.ConfigFile()
	if err != nil {
		return nil, err
	}
	created := s.Created
	if created.IsZero() {
		created = baseCF.Created.Time
	}
	created = created.UTC()

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	h := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     kargoPath,
		Mode:     old.Mode,
		Uid:      old.Uid,
		Gid:      old.Gid,
		Uname:    old.Uname,
		Gname:    old.Gname,
		Size:     int64(len(bin)),
		ModTime:  created,
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(h); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerTar := buf.Bytes()

	mt, err := b.image.MediaType()
	if err != nil {
		return nil, err
	}
	layerType := types.DockerLayer
	if mt == types.OCIManifestSchema1 {
		layerType = types.OCILayer
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(layerType))
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(b.image, mutate.Addendum{
		Layer:     l,
		MediaType: layerType,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "kargo-image: /usr/local/bin/kargo with the gha-dispatch-workflow and gha-wait-for-workflow steps compiled in",
		},
	})
	if err != nil {
		return nil, err
	}

	baseDigest, err := b.image.Digest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	labels := map[string]string{}
	for k, v := range cf.Config.Labels {
		labels[k] = v
	}
	labels[labelSource] = s.Source
	labels[labelVersion] = s.Version
	if s.Revision != "" {
		labels[labelRevision] = s.Revision
	}
	if n := firstNonEmpty(s.BaseName, b.name); n != "" {
		labels[labelBaseName] = n
	}
	labels[labelBaseDigest] = baseDigest.String()
	cf.Config.Labels = labels
	return mutate.ConfigFile(img, cf)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// checkPlatform refuses a base whose platform is not the binary's.
func checkPlatform(img v1.Image, want v1.Platform) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if p := cf.Platform(); p != nil && p.Architecture != "" && !p.Satisfies(want) {
		return fmt.Errorf("the base image is for %s, the binary for %s", p, want)
	}
	return nil
}

// push writes img to ref, as the Docker config's credentials allow.
func push(ctx context.Context, img v1.Image, ref string, keychain authn.Keychain) (name.Digest, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain)); err != nil {
		return name.Digest{}, fmt.Errorf("pushing %s: %w", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return r.Context().Digest(d.String()), nil
}

// writeTarball saves img as a `docker load` tarball named tag.
func writeTarball(img v1.Image, tag, out string) error {
	t, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, t, img); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}
