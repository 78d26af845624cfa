#!/usr/bin/env bash
# The real Kargo controller, end to end: etcd and kube-apiserver on
# loopback, Kargo's CRDs, bin/kargo (make kargo-controller) running as the
# controller, and the GitHub simulator, with Stages whose steps are
# gha-dispatch-workflow + gha-wait-for-workflow (test/kargo-e2e).
#   scripts/kargo-e2e.sh [go test flags, e.g. -run TestTwoShards]
#   KARGO_SRC=/path/to/kargo scripts/kargo-e2e.sh
#
# What it needs, and where it comes from:
#   etcd            Debian's etcd-server, installed with apt-get when missing
#                   (as root; CI machines are fresh)
#   kube-apiserver  built from k8s.io/kubernetes through the Go module proxy
#                   (test/kargo-e2e/kube-apiserver/go.mod pins the version),
#                   cached as kube-apiserver-<version>
#   CRDs            generated from the Kargo tree's api/v1alpha1 types by
#                   controller-gen at the version Kargo's own go.mod pins as
#                   a tool; cached as kargo-crds-<kargo version> for the
#                   shared archive, regenerated for a KARGO_SRC
#   the controller  KARGO_BINARY (default bin/kargo), built by
#                   scripts/kargo-controller.sh when missing; make kargo-e2e
#                   always rebuilds it first
# Every process's output is kept in bin/kargo-e2e-logs/ (KARGO_E2E_LOGS).
# KARGO_E2E_CACHE (default bin/) is where the built binaries and CRDs are
# kept; an empty one measures a cold run.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
archive="$(dirname "$root")/shared/kargo/kargo-v1.11.2-go.tar.gz"
cache="${KARGO_E2E_CACHE:-$root/bin}"
case "$cache" in /*) ;; *) cache="$root/$cache" ;; esac
mkdir -p "$cache"
start=$SECONDS
say() { echo "kargo-e2e: $* ($((SECONDS - start))s)"; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# etcd, from the distribution.
if ! command -v etcd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "kargo-e2e: etcd is missing; install Debian's etcd-server (apt-get install etcd-server) or put etcd on PATH" >&2
    exit 2
  fi
  say "installing etcd-server with apt-get"
  apt-get update -q >/dev/null
  # The test runs its own etcd on free loopback ports: a service the
  # package may start (on 2379) is left alone.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends etcd-server >/dev/null
fi
etcd_bin="$(command -v etcd)"
say "etcd: $("$etcd_bin" --version | head -n 1)"

# kube-apiserver, built once per Kubernetes version.
kas_mod="$root/test/kargo-e2e/kube-apiserver"
k8s_version="$(cd "$kas_mod" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
kas="$cache/kube-apiserver-$k8s_version"
if [ ! -x "$kas" ]; then
  say "building kube-apiserver $k8s_version (minutes, once)"
  (cd "$kas_mod" && CGO_ENABLED=0 nice go build -trimpath -o "$kas.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$kas.tmp" "$kas"
fi
say "kube-apiserver: $kas"

# The Kargo tree: for the CRDs (and the controller, when it must be built).
if [ -n "${KARGO_SRC:-}" ]; then
  src="$(cd "$KARGO_SRC" && pwd)"
  crds="$tmp/crds"
elif [ -f "$archive" ]; then
  src="$tmp/kargo-v1.11.2"
  crds="$cache/kargo-crds-v1.11.2"
else
  echo "kargo-e2e: no Kargo source: $archive is missing and KARGO_SRC is unset" >&2
  exit 2
fi
if [ ! -f "$crds/kargo.akuity.io_stages.yaml" ]; then
  [ -n "${KARGO_SRC:-}" ] || tar -xzf "$archive" -C "$tmp"
  [ -f "$src/api/go.mod" ] || { echo "kargo-e2e: $src is not a Kargo source tree (no api/go.mod)" >&2; exit 2; }
  gen_version="$(cd "$src" && GOWORK=off go list -m -f '{{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}' sigs.k8s.io/controller-tools)"
  gen="$cache/controller-gen-$gen_version"
  if [ ! -x "$gen" ]; then
    say "building controller-gen $gen_version (Kargo's pinned tool)"
    (cd "$src" && GOWORK=off nice go build -o "$gen.tmp" sigs.k8s.io/controller-tools/cmd/controller-gen)
    mv "$gen.tmp" "$gen"
  fi
  say "generating Kargo's CRDs from $src/api/v1alpha1"
  rm -rf "$crds.tmp"
  (cd "$src/api" && GOWORK=off nice "$gen" crd paths=./v1alpha1/... output:crd:artifacts:config="$crds.tmp")
  rm -rf "$crds" && mv "$crds.tmp" "$crds"
fi
say "CRDs: $(ls "$crds" | tr '\n' ' ')"

controller="${KARGO_BINARY:-bin/kargo}"
case "$controller" in /*) ;; *) controller="$root/$controller" ;; esac
if [ ! -x "$controller" ]; then
  say "building the controller"
  KARGO_BINARY="$controller" scripts/kargo-controller.sh
fi
say "controller: $controller (Kargo $("$controller" version 2>/dev/null | sed -n 's/^ *"version": "\(.*\)",$/\1/p'))"

logs="${KARGO_E2E_LOGS:-$root/bin/kargo-e2e-logs}"
rm -rf "$logs" && mkdir -p "$logs"
say "running the scenarios (process logs in $logs)"
cd test/kargo-e2e
status=0
KARGO_E2E_ETCD="$etcd_bin" KARGO_E2E_KUBE_APISERVER="$kas" KARGO_E2E_CONTROLLER="$controller" \
  KARGO_E2E_CRDS="$crds" KARGO_E2E_LOGS="$logs" \
  go test -count=1 -v -timeout 30m "$@" . || status=$?
say "done (status $status)"
exit "$status"
