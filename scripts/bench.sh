#!/usr/bin/env bash
# rampart's benchmarks: `rampart bench` (in-process cost per event with 1, 10
# and the config's playbooks; Kafka end to end against a bare consumer; alert
# latency at a fixed load) on a tansu broker started here, then the
# per-stage micro-benchmarks. Extra arguments go to `rampart bench`;
# PREVIOUS=<git rev> also measures that build beside this one.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

ensure_build_deps
ensure_tansu
start_broker
trap stop_broker EXIT

cargo build --release
# PREVIOUS=<git rev>: that build, checked out under .bench/previous and built in
# its own target directory, is measured side by side (rampart bench --previous).
previous=()
if [ -n "${PREVIOUS:-}" ]; then
  rm -rf .bench/previous
  git worktree prune
  git worktree add --detach .bench/previous "$PREVIOUS"
  (cd .bench/previous && cargo build --release)
  previous=(--previous .bench/previous)
fi
RAMPART_LOG=warn target/release/rampart bench --brokers "$RAMPART_KAFKA_BROKERS" "${previous[@]}" "$@"
if [ -z "${RAMPART_BENCH_E2E_ONLY:-}" ]; then
  cargo bench --bench decode
  cargo bench --bench enrich
  cargo bench --bench playbooks
  cargo bench --bench state
fi
