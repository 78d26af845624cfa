// Command build-image assembles the kargo-gha container image without a
// Docker daemon and without pulling anything: a static kargo-gha binary on
// an empty base, with CA certificates, running as the non-root user 65532
// (the user Kargo's custom-step containers run as). It writes a tarball
// that `docker load`, `crane push` or `skopeo copy` take as it is.
//
//	go run ./hack/build-image -out dist/kargo-gha-image.tar -tag ghcr.io/kargo-gha/kargo-gha:dev
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	out := flag.String("out", "dist/kargo-gha-image.tar", "where to write the image tarball")
	tag := flag.String("tag", "ghcr.io/kargo-gha/kargo-gha:dev", "image reference recorded in the tarball")
	arch := flag.String("arch", "amd64", "target architecture: amd64 or arm64")
	version := flag.String("version", "dev", "version stamped into the binary")
	caFile := flag.String("ca-certificates", "", "CA bundle to install instead of the pinned Mozilla roots (golang.org/x/crypto/x509roots/fallback)")
	flag.Parse()

	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		fail(err)
	}
	bin, err := buildBinary(*arch, *version)
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(filepath.Dir(bin))
	img, err := assemble(imageSpec{Binary: bin, CACertificates: *caFile, Arch: *arch, Version: *version})
	if err != nil {
		fail(err)
	}
	if err := write(img, *tag, *out); err != nil {
		fail(err)
	}
	fmt.Printf("wrote %s (%s, linux/%s)\n", *out, *tag, *arch)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "build-image:", err)
	os.Exit(1)
}
