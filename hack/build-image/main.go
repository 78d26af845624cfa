// Command build-image assembles the kargo-gha container image without a
// Docker daemon and without pulling anything: for each platform a static
// kargo-gha binary on an empty base, with CA certificates, running as the
// non-root user 65532 (the user Kargo's custom-step containers run as), all
// in one OCI image index with an SBOM attestation per platform. It writes
// the index as an OCI layout tarball (docker load, skopeo copy
// oci-archive:FILE), as an OCI layout directory with -layout (crane push
// DIR REF), and pushes it with -image.
//
//	go run . -out ../../dist/kargo-gha-image.tar -tag ghcr.io/kargo-gha/kargo-gha:dev
//	go run . -image registry.example.com/kargo-gha:v0.1.0 -out ''
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, authn.DefaultKeychain)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build-image:", err)
		os.Exit(1)
	}
}

// options are build-image's flags, checked.
type options struct {
	Out, Image     string
	Layout         string
	Tag            name.Tag
	Platforms      []v1.Platform
	CACertificates string
	Meta           metadata
}

func run(ctx context.Context, args []string, stdout io.Writer, keychain authn.Keychain) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if o.Meta.Revision == "" {
		fmt.Fprintf(stdout, "note: no %s label: not a git checkout (-revision sets it)\n", labelRevision)
	}
	idx, cleanup, err := build(o)
	defer cleanup()
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	if o.Out != "" {
		if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
			return err
		}
		if err := writeLayoutTarball(idx, o.Tag, o.Out, o.Meta.Created); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s: %s@%s (%s)\n", o.Out, o.Tag, digest, platformList(o.Platforms))
	}
	if o.Layout != "" {
		if err := writeLayout(idx, o.Tag, o.Layout); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/: %s@%s (crane push %s REF)\n", o.Layout, o.Tag, digest, o.Layout)
	}
	if o.Image != "" {
		ref, err := name.ParseReference(o.Image)
		if err != nil {
			return err
		}
		d, err := push(ctx, idx, ref, keychain)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pushed %s (%s)\n", d, platformList(o.Platforms))
	}
	return nil
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("build-image", flag.ContinueOnError)
	out := fs.String("out", "dist/kargo-gha-image.tar", "where to write the OCI layout tarball ('' with -image: push only)")
	layoutDir := fs.String("layout", "", "also write the OCI layout as a directory here (for crane push DIR REF), replacing what is there")
	tag := fs.String("tag", "", "the name recorded in the tarball (default: -image, else ghcr.io/kargo-gha/kargo-gha:dev)")
	image := fs.String("image", "", "push the index to this registry reference (credentials from the docker config)")
	archs := fs.String("arch", strings.Join(supportedArchs, ","), "comma-separated linux architectures to build: "+strings.Join(supportedArchs, ", "))
	version := fs.String("version", "dev", "version stamped into the binary and the "+labelVersion+" label")
	revision := fs.String("revision", "", "the "+labelRevision+" label (default: git rev-parse HEAD)")
	source := fs.String("source", "https://github.com/kargo-gha/kargo-gha", "the "+labelSource+" label")
	caFile := fs.String("ca-certificates", "", "CA bundle to install instead of the pinned Mozilla roots (golang.org/x/crypto/x509roots/fallback)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *out == "" && *image == "" && *layoutDir == "" {
		return options{}, errors.New("give -out to write a tarball, -layout a directory, -image to push, or several")
	}
	platforms, err := parseArchs(*archs)
	if err != nil {
		return options{}, err
	}
	tagName := *tag
	if tagName == "" {
		tagName = "ghcr.io/kargo-gha/kargo-gha:dev"
		if *image != "" {
			tagName = *image
		}
	}
	t, err := name.NewTag(tagName)
	if err != nil {
		return options{}, fmt.Errorf("-tag %q: %w", tagName, err)
	}
	if *image != "" {
		if _, err := name.ParseReference(*image); err != nil {
			return options{}, fmt.Errorf("-image %q: %w", *image, err)
		}
	}
	created, err := sourceDate()
	if err != nil {
		return options{}, err
	}
	rev := *revision
	if rev == "" {
		rev = git("rev-parse", "HEAD")
	}
	return options{
		Out: *out, Image: *image, Layout: *layoutDir, Tag: t, Platforms: platforms, CACertificates: *caFile,
		Meta: metadata{Source: *source, Revision: rev, Version: *version, Created: created},
	}, nil
}

// sourceDate is the image's creation time: SOURCE_DATE_EPOCH (the
// reproducible-builds convention), else the time of the commit built.
func sourceDate() (time.Time, error) {
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		sec, err := strconv.ParseInt(e, 10, 64)
		if err != nil || sec < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", e)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	ct := git("log", "-1", "--format=%ct")
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return time.Time{}, errors.New("no commit time (not a git checkout?): set SOURCE_DATE_EPOCH")
	}
	return time.Unix(sec, 0).UTC(), nil
}

// git runs git in the repository and returns its trimmed output, or "".
func git(args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = repoRoot()
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// build compiles and assembles every platform's image and the index. The
// cleanup removes the binaries once the index is written.
func build(o options) (v1.ImageIndex, func(), error) {
	var dirs []string
	cleanup := func() {
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	}
	var images []*platformImage
	for _, p := range o.Platforms {
		bin, err := buildBinary(p.Architecture, o.Meta.Version)
		if err != nil {
			return nil, cleanup, fmt.Errorf("%s: %w", p, err)
		}
		dirs = append(dirs, filepath.Dir(bin))
		img, err := assemble(imageSpec{Binary: bin, CACertificates: o.CACertificates, Platform: p, Meta: o.Meta})
		if err != nil {
			return nil, cleanup, fmt.Errorf("%s: %w", p, err)
		}
		images = append(images, &platformImage{Platform: p, Image: img, binary: bin, version: o.Meta.Version})
	}
	idx, err := index(images, o.Meta, o.Tag.Context().Name())
	return idx, cleanup, err
}

func platformList(ps []v1.Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
