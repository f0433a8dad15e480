#!/usr/bin/env bash
# rampart's benchmarks: decode and in-process pipeline cost, then the Kafka
# source against a bare consumer on a tansu broker started here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

ensure_build_deps
ensure_tansu
start_broker
trap stop_broker EXIT

cargo bench --bench decode
cargo bench --bench enrich
cargo bench --bench playbooks
cargo bench --bench kafka
