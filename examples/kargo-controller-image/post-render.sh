#!/bin/sh
# A Helm post-renderer: reads the Kargo chart's manifests on stdin and
# writes them with the controller on the image of controller-image.yaml
# (this directory's kustomization) on stdout.
#   helm install kargo oci://ghcr.io/akuity/kargo-charts/kargo --version 1.11.2 \
#     --namespace kargo --create-namespace --post-renderer ./post-render.sh ...
# Needs kustomize, or kubectl (kubectl kustomize).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$here/kustomization.yaml" "$here/controller-image.yaml" "$tmp/"
cat > "$tmp/helm-output.yaml"
if command -v kustomize >/dev/null 2>&1; then
  kustomize build "$tmp"
else
  kubectl kustomize "$tmp"
fi
