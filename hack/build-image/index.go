package main

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The descriptor annotations buildx gives an attestation manifest in an
// index: which image manifest it is about, and that it is an attestation
// (so that runtimes never pick it as an image).
const (
	annotationReferenceType   = "vnd.docker.reference.type"
	annotationReferenceDigest = "vnd.docker.reference.digest"
	attestationManifest       = "attestation-manifest"
	annotationPredicateType   = "in-toto.io/predicate-type"
	inTotoMediaType           = types.MediaType("application/vnd.in-toto+json")
)

// platformImage is one platform's image and the SBOM of its binary.
type platformImage struct {
	Platform v1.Platform
	Image    v1.Image
	SBOM     []byte // filled in by index, once the manifest digest is known
	binary   string
	version  string
}

// index puts the platforms' images in one OCI image index, each followed by
// an attestation manifest carrying its SBOM, the way buildx does: the SBOM
// travels with the index through every copy (crane, skopeo --all, an OCI
// layout tarball) and needs no registry support for referrers. repo names
// the image in the attestations' subjects.
func index(images []*platformImage, meta metadata, repo string) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, pi := range images {
		digest, err := pi.Image.Digest()
		if err != nil {
			return nil, err
		}
		bom, err := sbom(pi.binary, pi.version, meta.Created)
		if err != nil {
			return nil, err
		}
		st, err := sbomStatement(bom, repo, pi.Platform.String(), digest.Hex)
		if err != nil {
			return nil, err
		}
		pi.SBOM = st
		att, err := attestation(st, meta)
		if err != nil {
			return nil, err
		}
		p := pi.Platform
		adds = append(adds,
			mutate.IndexAddendum{Add: pi.Image, Descriptor: v1.Descriptor{Platform: &p, MediaType: types.OCIManifestSchema1}},
			mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
				Platform:  &v1.Platform{OS: "unknown", Architecture: "unknown"},
				MediaType: types.OCIManifestSchema1,
				Annotations: map[string]string{
					annotationReferenceType:   attestationManifest,
					annotationReferenceDigest: digest.String(),
				},
			}},
		)
	}
	idx = mutate.AppendManifests(idx, adds...)
	out, ok := mutate.Annotations(idx, meta.annotations()).(v1.ImageIndex)
	if !ok {
		return nil, fmt.Errorf("annotating the index")
	}
	return out, nil
}

// attestation is an attestation manifest: one in-toto layer, on a config
// of the "unknown/unknown" platform as buildx writes it.
func attestation(statement []byte, meta metadata) (v1.Image, error) {
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:       static.NewLayer(statement, inTotoMediaType),
		Annotations: map[string]string{annotationPredicateType: cycloneDXPredicate},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "unknown", "unknown", v1.Time{Time: meta.Created.UTC()}
	return mutate.ConfigFile(img, cf)
}
