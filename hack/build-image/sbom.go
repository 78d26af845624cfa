package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/CycloneDX/cyclonedx-gomod/pkg/generate/bin"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

const (
	// inTotoStatement and cycloneDXPredicate are what buildx writes in an
	// SBOM attestation, and so what docker buildx imagetools, Docker Scout
	// and the other readers of buildx attestations look for.
	inTotoStatement    = "https://in-toto.io/Statement/v0.1"
	cycloneDXPredicate = "https://cyclonedx.org/bom"
)

// releaseVersion is a version that names a release (v1.2.3, v1.2.3-rc.1).
var releaseVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$`)

// sbom is the CycloneDX SBOM of one built binary, from the module list Go
// recorded in it (debug/buildinfo), by CycloneDX's own Go generator
// (cyclonedx-gomod). The dependencies are the ones linked into this binary,
// with their versions and go.sum hashes; licenses are not detected (that
// would download every module's source). The document's time and serial
// number come from its inputs, so that it too is reproducible.
func sbom(binary, version string, created time.Time) (*cdx.BOM, error) {
	// The Go standard library is listed too: scanners match its version
	// against Go's vulnerabilities. A release version (v1.2.3) names the
	// main module; otherwise the generator derives a pseudo-version from
	// the commit Go recorded.
	opts := []bin.Option{bin.WithLogger(zerolog.Nop()), bin.WithIncludeStdlib(true)}
	if releaseVersion.MatchString(version) {
		opts = append(opts, bin.WithVersionOverride(version))
	}
	g, err := bin.NewGenerator(binary, opts...)
	if err != nil {
		return nil, err
	}
	bom, err := g.Generate()
	if err != nil {
		return nil, fmt.Errorf("SBOM of %s: %w", binary, err)
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	bom.SerialNumber = uuid.NewSHA1(uuid.NameSpaceURL, sum[:]).URN()
	bom.Metadata.Timestamp = created.UTC().Format(time.RFC3339)
	bom.Metadata.Tools = &cdx.ToolsChoice{Components: &[]cdx.Component{{
		Type: cdx.ComponentTypeApplication, Group: "CycloneDX", Name: "cyclonedx-gomod", Version: generatorVersion(),
	}}}
	return bom, nil
}

// generatorVersion is the cyclonedx-gomod version linked into this builder.
func generatorVersion() string {
	if v := moduleVersion("github.com/CycloneDX/cyclonedx-gomod"); v != "" {
		return v
	}
	return "unknown"
}

// inTotoSubject names the image an attestation is about, as buildx does.
type inTotoSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type inTotoStatementDoc struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Subject       []inTotoSubject `json:"subject"`
	Predicate     json.RawMessage `json:"predicate"`
}

// sbomStatement wraps the SBOM in an in-toto statement about the image
// manifest it describes.
func sbomStatement(bom *cdx.BOM, repo, platform, manifestHex string) ([]byte, error) {
	var doc bytes.Buffer
	if err := cdx.NewBOMEncoder(&doc, cdx.BOMFileFormatJSON).Encode(bom); err != nil {
		return nil, err
	}
	st := inTotoStatementDoc{
		Type:          inTotoStatement,
		PredicateType: cycloneDXPredicate,
		Subject: []inTotoSubject{{
			Name:   "pkg:docker/" + repo + "?platform=" + url.QueryEscape(platform),
			Digest: map[string]string{"sha256": manifestHex},
		}},
		Predicate: json.RawMessage(bytes.TrimSpace(doc.Bytes())),
	}
	return json.Marshal(st)
}
