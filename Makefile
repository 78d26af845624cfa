# kargo-gha: `make demo` runs a dispatch end to end against the GitHub
# simulator; `make test` is what CI runs.
GO ?= go

.PHONY: test openapi build demo image kargo-test kargo-controller kargo-controller-test kargo-e2e kargo-image kargo-image-args fuzz bench bench-short

build:
	$(GO) build -ldflags "-X main.commit=$$(git rev-parse HEAD 2>/dev/null) -X main.date=$$(git log -1 --format=%cI 2>/dev/null)" -o bin/kargo-gha ./cmd/kargo-gha
	$(GO) build -o bin/ghsim ./cmd/ghsim

# GitHub's OpenAPI description, for the simulator's conformance test.
openapi:
	npm ci --prefix test/openapi --no-audit --no-fund

# Ends with the Kargo module (scripts/kargo-test.sh): against KARGO_SRC, or
# ../shared/kargo/kargo-v1.11.2-go.tar.gz; without either it says it skipped
# (and fails under CI=true).
test: openapi
	$(GO) vet ./...
	KARGO_GHA_REQUIRE_OPENAPI=1 $(GO) test -race -count=1 ./...
	cd hack/build-image && $(GO) vet ./... && $(GO) test -count=1 ./...
	cd hack/kargo-image && $(GO) vet ./... && $(GO) test -count=1 ./...
	@# The end-to-end module requires this one: a dependency change here
	@# needs "cd test/kargo-e2e && go mod tidy" (its run is make kargo-e2e).
	cd test/kargo-e2e && $(GO) mod tidy -diff && $(GO) vet ./...
	scripts/kargo-test.sh

demo:
	./scripts/demo.sh

# The container image for linux/amd64 and linux/arm64 (ARCH=amd64 for one),
# one OCI index with an SBOM per platform, as an OCI layout tarball
# (docker load / skopeo copy oci-archive:...), the same layout as a
# directory (crane push dist/kargo-gha-oci REF) and, with IMAGE=,
# pushed:
#   make image
#   make image IMAGE=registry.example.com/kargo-gha:v0.1.0 VERSION=v0.1.0
ARCH ?= amd64,arm64
image:
	env -u GOOS -u GOARCH -u GOFLAGS $(GO) -C hack/build-image run . \
		-out $(CURDIR)/dist/kargo-gha-image.tar -layout $(CURDIR)/dist/kargo-gha-oci \
		-arch "$(ARCH)" -version "$(VERSION)" -revision "$(REVISION)" $(if $(IMAGE),-image "$(IMAGE)")

# Only the Kargo module: Kargo's promotion engine running these steps (see test).
kargo-test:
	scripts/kargo-test.sh

# Kargo's own controller binary (cmd/controlplane) with the steps compiled
# in by one blank import, into bin/kargo: from Kargo v1.11.2's source in
# ../shared/kargo/, or KARGO_SRC (see scripts/kargo-controller.sh).
KARGO_BINARY ?= bin/kargo
kargo-controller:
	KARGO_BINARY="$(KARGO_BINARY)" scripts/kargo-controller.sh

# Builds bin/kargo and checks it (its version, its modules, the steps
# linked in). Minutes of CPU the first time, so not part of make test.
kargo-controller-test: kargo-controller
	cd hack/kargo-image && KARGO_BINARY="$(abspath $(KARGO_BINARY))" $(GO) test -count=1 -run '^TestKargoController$$' -v .

# Kargo's real controller (bin/kargo, rebuilt first) promoting Stages with
# the gha-* steps against etcd, kube-apiserver and the GitHub simulator
# (see scripts/kargo-e2e.sh; installs etcd-server with apt-get when missing).
kargo-e2e: kargo-controller
	KARGO_BINARY="$(KARGO_BINARY)" scripts/kargo-e2e.sh

# Kargo's image with bin/kargo (KARGO_BINARY) as /usr/local/bin/kargo, in
# one new layer over BASE (a reference to pull, or a docker save or OCI
# archive tarball; see hack/kargo-image):
#   make kargo-image IMAGE=registry.example.com/kargo:v1.11.2-gha   (push)
#   make kargo-image OUT=dist/kargo-image.tar                       (tarball)
# Built from another Kargo tree (KARGO_SRC), BASE must be that version's.
BASE ?= ghcr.io/akuity/kargo:v1.11.2
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
kargo-image: kargo-image-args kargo-controller
	env -u GOOS -u GOARCH $(GO) build -C hack/kargo-image -o $(CURDIR)/bin/kargo-image .
	bin/kargo-image -base "$(BASE)" -binary "$(KARGO_BINARY)" -version "$(VERSION)" -revision "$(REVISION)" \
		$(if $(IMAGE),-image "$(IMAGE)") $(if $(OUT),-out "$(OUT)")

# What kargo-image needs, checked before the minutes of building.
kargo-image-args:
	@if [ -z "$(IMAGE)$(OUT)" ]; then \
		echo "kargo-image: set IMAGE=registry/repo:tag to push, or OUT=path.tar to write a tarball" >&2; exit 2; fi
	@if [ -n "$(KARGO_SRC)" ] && [ "$(origin BASE)" = file ]; then \
		echo "kargo-image: KARGO_SRC is set, so BASE must be that Kargo version's image (BASE=ghcr.io/akuity/kargo:vX.Y.Z)" >&2; exit 2; fi

# A short run of every fuzz target (CI); FUZZTIME=5m for a real session.
FUZZTIME ?= 10s
FUZZ_TARGETS = internal/repourl:FuzzParse internal/config:FuzzParseConfigs internal/config:FuzzRenderInput \
	internal/credentials:FuzzParseSecrets internal/cli:FuzzDecodeConfig internal/migrate:FuzzFile
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) ./$${t%%:*} || exit 1; \
	done

# The benchmark report (docs/performance.md and its chart): a few minutes.
bench:
	cd bench && $(GO) run . -out ../docs/performance.md -chart ../docs/performance-overhead.png

# The benchmark in its short setting (CI): every scenario, no timing asserted.
bench-short:
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...
