#!/usr/bin/env bash
# Builds Kargo's own controller binary (cmd/controlplane) with the gha-*
# steps compiled in, into bin/kargo (or KARGO_BINARY):
#   scripts/kargo-controller.sh                     Kargo v1.11.2 from ../shared/kargo/
#   KARGO_SRC=/path/to/kargo scripts/kargo-controller.sh
#   GOARCH=arm64 KARGO_BINARY=bin/kargo-arm64 scripts/kargo-controller.sh
#
# Kargo's files are not edited. The steps come in the way a user adds them:
# one file in Kargo's main package holding one blank import,
#   import _ "github.com/kargo-gha/kargo-gha/kargo/steps"
# which `go build -overlay` adds to the tree for this build only. A Go
# workspace names the Kargo tree's three modules, this repository and its
# kargo/ module (as scripts/kargo-test.sh does), since Kargo's nested
# modules are not on the Go module proxy.
#
# The version is stamped as Kargo's release build stamps it (the -ldflags
# of Kargo's Dockerfile, into github.com/akuity/kargo/pkg/x/version), so
# that `kargo version` reports the Kargo release:
#   KARGO_VERSION     e.g. v1.11.2; for the shared archive, v1.11.2; for a
#                     KARGO_SRC git checkout, the tag at HEAD
#   KARGO_GIT_COMMIT  the commit the tree is at; for the shared archive,
#                     20c56384dc3a (its README); for a git checkout, HEAD
#   KARGO_GIT_TREE_STATE  clean (default) or dirty; a dirty git checkout
#                     says dirty
#   SOURCE_DATE_EPOCH the build date (default: now, as Kargo's build)
# Without a version or a commit Kargo reports itself as "devel+unknown".
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
archive="$(dirname "$root")/shared/kargo/kargo-v1.11.2-go.tar.gz"
out="${KARGO_BINARY:-bin/kargo}"
case "$out" in /*) ;; *) out="$root/$out" ;; esac

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
version="${KARGO_VERSION:-}"
commit="${KARGO_GIT_COMMIT:-}"
state="${KARGO_GIT_TREE_STATE:-}"
if [ -n "${KARGO_SRC:-}" ]; then
  src="$(cd "$KARGO_SRC" && pwd)"
  if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    [ -n "$version" ] || version="$(git -C "$src" describe --tags --exact-match 2>/dev/null || true)"
    [ -n "$commit" ] || commit="$(git -C "$src" rev-parse HEAD)"
    if [ -z "$state" ]; then
      if [ -z "$(git -C "$src" status --porcelain)" ]; then state=clean; else state=dirty; fi
    fi
  fi
elif [ -f "$archive" ]; then
  tar -xzf "$archive" -C "$tmp"
  src="$tmp/kargo-v1.11.2"
  [ -n "$version" ] || version=v1.11.2
  [ -n "$commit" ] || commit=20c56384dc3a
else
  echo "kargo-controller: no Kargo source: $archive is missing and KARGO_SRC is unset" >&2
  exit 2
fi
state="${state:-clean}"
[ -f "$src/go.mod" ] && grep -q '^module github.com/akuity/kargo$' "$src/go.mod" &&
  [ -d "$src/cmd/controlplane" ] || {
  echo "kargo-controller: $src is not a Kargo source tree (no github.com/akuity/kargo module with cmd/controlplane)" >&2; exit 2; }
[ -n "$version" ] && [ -n "$commit" ] ||
  echo "kargo-controller: warning: KARGO_VERSION or KARGO_GIT_COMMIT unknown for $src; \`kargo version\` will say devel" >&2

# The one file a user adds to Kargo's main package, laid over the tree.
steps_file="$src/cmd/controlplane/zz_kargo_gha_steps.go"
[ ! -e "$steps_file" ] || {
  echo "kargo-controller: $steps_file already exists in the Kargo tree" >&2; exit 2; }
cat > "$tmp/zz_kargo_gha_steps.go" <<'GO'
package main

// Registers the gha-dispatch-workflow and gha-wait-for-workflow promotion
// steps (github.com/kargo-gha/kargo-gha).
import _ "github.com/kargo-gha/kargo-gha/kargo/steps"
GO
printf '{"Replace": {"%s": "%s"}}\n' "$steps_file" "$tmp/zz_kargo_gha_steps.go" > "$tmp/overlay.json"

cat > "$tmp/go.work" <<WORK
go 1.26.0

use (
	$src
	$src/api
	$src/pkg/x/client/generated
	$root
	$root/kargo
)

// This repository's core is not on the module proxy either.
replace github.com/kargo-gha/kargo-gha v0.0.0 => $root
WORK

pkg=github.com/akuity/kargo/pkg/x/version
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  date="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
else
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fi
ldflags="-w -X $pkg.version=$version -X $pkg.buildDate=$date -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=$state"

mkdir -p "$(dirname "$out")"
echo "kargo-controller: building $src/cmd/controlplane (${version:-devel}, ${GOOS:-linux}/${GOARCH:-$(go env GOARCH)}) into $out"
start=$SECONDS
(cd "$src" && GOWORK="$tmp/go.work" CGO_ENABLED=0 GOOS="${GOOS:-linux}" \
  go build -trimpath -overlay "$tmp/overlay.json" -ldflags "$ldflags" -o "$out" ./cmd/controlplane)
echo "kargo-controller: wrote $out in $((SECONDS - start))s"
