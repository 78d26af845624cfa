#!/usr/bin/env bash
# Builds kargo-gha and the GitHub simulator, starts the simulator on
# loopback, and dispatches the example step configuration against it, then
# waits for the run.
set -euo pipefail
cd "$(dirname "$0")/.."
addr="127.0.0.1:${GHSIM_PORT:-0}" # 0: any free port
work="$(mktemp -d)"
sim=""
trap '[ -n "$sim" ] && kill "$sim" 2>/dev/null; rm -rf "$work"' EXIT

go build -o bin/kargo-gha ./cmd/kargo-gha
go build -o bin/ghsim ./cmd/ghsim
./bin/ghsim -addr "$addr" -ca-file "$work/ca.pem" -url-file "$work/url" -answer "${GHSIM_ANSWER:-run-details}" \
  -run-delay 2s -queued-for 2s -run-for 4s >"$work/ghsim.log" 2>&1 &
sim=$!
for _ in $(seq 100); do
  [ -s "$work/url" ] && break
  if ! kill -0 "$sim" 2>/dev/null; then
    echo "the simulator did not start; its output:" >&2
    cat "$work/ghsim.log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -s "$work/url" ] || { echo "the simulator did not start within 10 s; its output:" >&2; cat "$work/ghsim.log" >&2; exit 1; }
url="$(cat "$work/url")"

# The example step's repoURL points at github.com; the simulator stands in
# for a GitHub Enterprise Server on loopback, so only repoURL changes.
sed "s|https://github.com/example/app|$url/example/app|" examples/dispatch-step.yaml >"$work/step.yaml"
echo "\$ kargo-gha dispatch --config examples/dispatch-step.yaml --wait --expected-conclusion success   (repoURL -> $url)" >&2
SSL_CERT_FILE="$work/ca.pem" GH_TOKEN=ghp_simulated_demo_token KARGO_OUTPUT="$work/output" \
  ./bin/kargo-gha dispatch --config "$work/step.yaml" --wait --expected-conclusion success --poll-interval 1s
echo "--- \$KARGO_OUTPUT:" >&2
cat "$work/output" >&2
