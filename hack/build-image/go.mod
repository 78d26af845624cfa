// The container image builder: its own module so that go-containerregistry
// stays out of the dependencies of kargo-gha itself.
module github.com/kargo-gha/kargo-gha/hack/build-image

go 1.26.0

require (
	github.com/google/go-containerregistry v0.20.7
	golang.org/x/crypto/x509roots/fallback v0.0.0-20260213171211-a408498e5541
)

require (
	github.com/containerd/stargz-snapshotter/estargz v0.18.1 // indirect
	github.com/klauspost/compress v1.18.1 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	github.com/vbatts/tar-split v0.12.2 // indirect
	golang.org/x/sync v0.18.0 // indirect
)
