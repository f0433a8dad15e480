#!/usr/bin/env bash
# rampart's whole test suite: installs what is missing, starts a tansu Kafka
# broker on a free loopback port, checks formatting and lints, runs every
# test, fuzzes each parser for a bounded time, and stops the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

ensure_build_deps
ensure_tansu
start_broker
trap stop_broker EXIT

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
scripts/validate-deploy.sh
# Tests that measure something (the security suite's refusals, peak memory, bytes searched
# for secrets) append a line here through tests/support/common.rs's `figure`; shown after the run.
figures="${CARGO_TARGET_DIR:-target}/tmp/figures.txt"
rm -f "$figures"
cargo test "$@"
if [ -s "$figures" ]; then
  echo "figures:"
  cat "$figures"
fi
# Every fuzz target, 30 s each (docs/fuzzing.md); RAMPART_FUZZ_SECONDS=0 skips it.
scripts/fuzz.sh "${RAMPART_FUZZ_SECONDS:-30}"
