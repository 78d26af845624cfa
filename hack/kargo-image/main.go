// Command kargo-image makes a Kargo image whose controller runs the gha-*
// steps, without a Docker daemon: it takes Kargo's released image (the
// base), replaces /usr/local/bin/kargo with a kargo binary built with the
// steps compiled in (scripts/kargo-controller.sh, bin/kargo) as one new
// layer, keeps the base's entrypoint, command, user, environment and
// labels, adds OCI labels saying what the image is and what it is based
// on, and pushes it or writes a tarball.
//
//	go run . -base ghcr.io/akuity/kargo:v1.11.2 -binary ../../bin/kargo -image registry.example.com/kargo:v1.11.2-gha
//	go run . -base kargo-v1.11.2.tar -binary ../../bin/kargo -out ../../dist/kargo-image.tar
//
// The base is pulled for the binary's platform (read from its ELF header)
// with the credentials of the Docker config (~/.docker/config.json,
// DOCKER_CONFIG), and so is the push.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, authn.DefaultKeychain)
	stop()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kargo-image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer, keychain authn.Keychain) error {
	fs := flag.NewFlagSet("kargo-image", flag.ContinueOnError)
	baseRef := fs.String("base", "", "the Kargo image to build on: a reference to pull, a `docker save` or OCI archive tarball, or an OCI layout directory")
	binary := fs.String("binary", "bin/kargo", "the kargo binary with the steps compiled in")
	image := fs.String("image", "", "where to push the image; with -out, the name recorded in the tarball")
	out := fs.String("out", "", "write a `docker load` tarball here instead of pushing")
	platform := fs.String("platform", "", "the platform, os/arch (default: the binary's)")
	version := fs.String("version", "dev", "the "+labelVersion+" label")
	revision := fs.String("revision", "", "the "+labelRevision+" label (default: the base's)")
	source := fs.String("source", "https://github.com/kargo-gha/kargo-gha", "the "+labelSource+" label")
	baseName := fs.String("base-name", "", "the "+labelBaseName+" label (default: the base's reference, or the name its tarball records)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *baseRef == "" {
		return errors.New("-base is required (e.g. ghcr.io/akuity/kargo:v1.11.2)")
	}
	if *image == "" && *out == "" {
		return errors.New("give -image to push, or -out to write a tarball")
	}
	tag := *image
	if tag == "" {
		tag = "kargo-gha/kargo:dev"
	}

	var p *v1.Platform
	var err error
	if *platform != "" {
		p, err = v1.ParsePlatform(*platform)
	} else {
		p, err = binaryPlatform(*binary)
	}
	if err != nil {
		return err
	}
	var created time.Time
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		sec, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", e, err)
		}
		created = time.Unix(sec, 0)
	}

	b, err := loadBase(ctx, *baseRef, *p, keychain)
	if err != nil {
		return err
	}
	if err := checkPlatform(b.image, *p); err != nil {
		return err
	}
	if b.name == "" && *baseName == "" {
		fmt.Fprintf(stdout, "note: %s records no image name: no %s label (-base-name sets one)\n", *baseRef, labelBaseName)
	}
	img, err := build(b, spec{
		Binary:   *binary,
		Source:   *source,
		Version:  *version,
		Revision: *revision,
		BaseName: *baseName,
		Created:  created,
	})
	if err != nil {
		return err
	}
	if *out != "" {
		if err := writeTarball(img, tag, *out); err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (%s, %s, %s)\n", *out, tag, p, d)
		return nil
	}
	d, err := push(ctx, img, *image, keychain)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pushed %s (%s)\n", d, p)
	return nil
}
