#!/usr/bin/env bash
# Builds and tests the Kargo module (kargo/) against a Kargo source tree:
#   KARGO_SRC=/path/to/kargo-v1.11.2 scripts/kargo-test.sh
# The Kargo module cannot be fetched from the Go module proxy (it needs its
# unpublished api module), so a Go workspace names the source tree instead.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${KARGO_SRC:?set KARGO_SRC to a Kargo v1.11.x source tree}"
src="$(cd "$KARGO_SRC" && pwd)"
[ -f "$src/go.mod" ] && grep -q '^module github.com/akuity/kargo$' "$src/go.mod" || {
  echo "KARGO_SRC=$KARGO_SRC is not a Kargo source tree" >&2; exit 2; }
cat > kargo/go.work <<WORK
go 1.26.0

use (
	.
	..
	$src
	$src/api
	$src/pkg/x/client/generated
)

// This repository's core is not on the module proxy either.
replace github.com/kargo-gha/kargo-gha v0.0.0 => ..
WORK
cd kargo
go vet ./...
go test -race -count=1 "${@:-./...}"
