#!/usr/bin/env bash
# Checks, vets and tests the Kargo module (kargo/) against Kargo v1.11.2's
# source tree: KARGO_SRC if set, else ../shared/kargo/kargo-v1.11.2-go.tar.gz
# (beside the repository) unpacked into a temporary directory.
#   scripts/kargo-test.sh [go test flags, e.g. -v or -run X]
#   KARGO_SRC=/path/to/kargo-v1.11.2 scripts/kargo-test.sh
#   scripts/kargo-test.sh tidy     rewrites kargo/go.mod and kargo/go.sum
# Without either source it fails when CI is set (CI=true) and otherwise
# prints one line saying the Kargo module was not tested.
# The Kargo module cannot be fetched from the Go module proxy (it needs its
# unpublished api module), so a Go workspace names the source tree instead.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
archive="$(dirname "$root")/shared/kargo/kargo-v1.11.2-go.tar.gz"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ -n "${KARGO_SRC:-}" ]; then
  src="$(cd "$KARGO_SRC" && pwd)"
  # Kept, so that go commands in kargo/ work afterwards (it is ignored by git).
  work="$root/kargo/go.work"
elif [ -f "$archive" ]; then
  tar -xzf "$archive" -C "$tmp"
  src="$tmp/kargo-v1.11.2"
  work="$tmp/go.work"
else
  case "${CI:-}" in
  "" | false | 0)
    echo "kargo module: SKIPPED, not built or tested: no $archive and KARGO_SRC is unset (see README, \"Test against Kargo's own promotion engine\")"
    exit 0 ;;
  *)
    echo "kargo module: FAILED: $archive is missing and KARGO_SRC is unset; CI must build and test the Kargo module (shared/ belongs beside the clone)" >&2
    exit 1 ;;
  esac
fi
[ -f "$src/go.mod" ] && grep -q '^module github.com/akuity/kargo$' "$src/go.mod" || {
  echo "kargo module: $src is not a Kargo source tree" >&2; exit 2; }
echo "kargo module: against $src"

# go mod tidy ignores workspaces: it runs on a copy of kargo/go.mod whose
# replacements name the workspace's modules.
tidy() {
  mkdir -p "$tmp/tidy"
  cp kargo/go.mod "$tmp/tidy/go.mod"
  [ ! -f kargo/go.sum ] || cp kargo/go.sum "$tmp/tidy/go.sum"
  local repl=(
    "github.com/akuity/kargo=$src"
    "github.com/akuity/kargo/api=$src/api"
    "github.com/akuity/kargo/pkg/x/client/generated=$src/pkg/x/client/generated"
    "github.com/kargo-gha/kargo-gha=$root"
  )
  local r edit=() drop=()
  for r in "${repl[@]}"; do edit+=("-replace=$r"); drop+=("-dropreplace=${r%%=*}"); done
  # Called from conditions (no set -e there): each status is returned.
  (cd kargo && GOWORK=off go mod edit "${edit[@]}" "$tmp/tidy/go.mod" &&
    GOWORK=off go mod tidy -modfile="$tmp/tidy/go.mod" "$@") || return
  [ "$#" -eq 0 ] || return 0
  GOWORK=off go mod edit "${drop[@]}" "$tmp/tidy/go.mod" &&
    cp "$tmp/tidy/go.mod" kargo/go.mod &&
    cp "$tmp/tidy/go.sum" kargo/go.sum
}
if [ "${1:-}" = tidy ]; then
  tidy
  echo "kargo module: kargo/go.mod and kargo/go.sum tidied"
  exit 0
fi
tidy -diff || {
  echo "kargo module: kargo/go.mod or kargo/go.sum is not tidy (the diff above); run scripts/kargo-test.sh tidy" >&2
  exit 1; }

cat > "$work" <<WORK
go 1.26.0

use (
	$root/kargo
	$root
	$src
	$src/api
	$src/pkg/x/client/generated
)

// This repository's core is not on the module proxy either.
replace github.com/kargo-gha/kargo-gha v0.0.0 => $root
WORK
export GOWORK="$work"
cd kargo
# go test's vet runs every check (-vet=all, what go vet runs) on the
# race-instrumented build, so Kargo's dependencies are compiled once.
if [ "$#" -gt 0 ]; then
  go test -race -count=1 -vet=all "$@" ./...
  exit 0
fi
# Without flags: one line per test (what CI's log shows ran), the whole
# output only when something failed.
log="$tmp/kargo-test.log"
rc=0
go test -race -count=1 -vet=all -v ./... >"$log" 2>&1 || rc=$?
grep -E '^(--- (PASS|FAIL|SKIP)|ok |FAIL|panic:)' "$log" || true
if [ "$rc" -ne 0 ]; then
  echo "kargo module: FAILED; the whole output follows" >&2
  cat "$log" >&2
fi
exit "$rc"
