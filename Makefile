# kargo-gha: `make demo` runs a dispatch end to end against the GitHub
# simulator; `make test` is what CI runs.
GO ?= go

.PHONY: test openapi build demo image kargo-test kargo-controller kargo-controller-test kargo-image fuzz bench bench-short

build:
	$(GO) build -o bin/kargo-gha ./cmd/kargo-gha
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
	scripts/kargo-test.sh

demo:
	./scripts/demo.sh

# The container image, as a tarball (docker load / crane push / skopeo copy).
image:
	cd hack/build-image && $(GO) run . -out ../../dist/kargo-gha-image.tar -tag ghcr.io/kargo-gha/kargo-gha:dev

# Only the Kargo module: Kargo's promotion engine running these steps (see test).
kargo-test:
	scripts/kargo-test.sh

# Kargo's own controller binary (cmd/controlplane) with the steps compiled
# in by one blank import, into bin/kargo: from Kargo v1.11.2's source in
# ../shared/kargo/, or KARGO_SRC (see scripts/kargo-controller.sh).
kargo-controller:
	scripts/kargo-controller.sh

# Builds bin/kargo and checks it (its version, its modules, the steps
# linked in). Minutes of CPU the first time, so not part of make test.
kargo-controller-test: kargo-controller
	cd hack/kargo-image && KARGO_BINARY=$(CURDIR)/bin/kargo $(GO) test -count=1 -run '^TestKargoController$$' -v .

# A short run of every fuzz target (CI); FUZZTIME=5m for a real session.
FUZZTIME ?= 10s
FUZZ_TARGETS = internal/repourl:FuzzParse internal/config:FuzzParseConfigs internal/config:FuzzRenderInput \
	internal/credentials:FuzzParseSecrets internal/cli:FuzzDecodeConfig
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
