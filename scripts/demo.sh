#!/usr/bin/env bash
# Builds kargo-gha and the GitHub simulator, starts the simulator on
# loopback, and dispatches the example step configuration against it.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${GHSIM_PORT:-18443}"
work="$(mktemp -d)"
trap 'kill "$sim" 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o bin/kargo-gha ./cmd/kargo-gha
go build -o bin/ghsim ./cmd/ghsim
./bin/ghsim -addr "127.0.0.1:$port" -ca-file "$work/ca.pem" -answer "${GHSIM_ANSWER:-run-details}" -run-delay 2s >"$work/ghsim.log" 2>&1 &
sim=$!
for _ in $(seq 50); do [ -s "$work/ca.pem" ] && break; sleep 0.1; done

# The example step's repoURL points at github.com; the simulator stands in
# for a GitHub Enterprise Server on loopback, so only repoURL changes.
sed "s|https://github.com/example/app|https://127.0.0.1:$port/example/app|" examples/dispatch-step.yaml >"$work/step.yaml"
echo "\$ kargo-gha dispatch --config examples/dispatch-step.yaml   (repoURL -> simulator)" >&2
SSL_CERT_FILE="$work/ca.pem" GITHUB_TOKEN=ghp_simulated_demo_token KARGO_OUTPUT="$work/output" \
  ./bin/kargo-gha dispatch --config "$work/step.yaml"
echo "--- \$KARGO_OUTPUT:" >&2
cat "$work/output" >&2
