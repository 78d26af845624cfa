# kargo-gha: `make demo` runs a dispatch end to end against the GitHub
# simulator; `make test` is what CI runs.
GO ?= go

.PHONY: test openapi build demo

build:
	$(GO) build -o bin/kargo-gha ./cmd/kargo-gha
	$(GO) build -o bin/ghsim ./cmd/ghsim

# GitHub's OpenAPI description, for the simulator's conformance test.
openapi:
	npm ci --prefix test/openapi --no-audit --no-fund

test: openapi
	$(GO) vet ./...
	KARGO_GHA_REQUIRE_OPENAPI=1 $(GO) test -race -count=1 ./...

demo:
	./scripts/demo.sh
