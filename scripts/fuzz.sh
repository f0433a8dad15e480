#!/usr/bin/env bash
# Fuzzes each cargo-fuzz target in fuzz/ for a bounded time, one after another,
# and prints per target: executions, executions per second, corpus size and
# the result. Exits non-zero if any target crashed (the input is kept under
# fuzz/artifacts/<target>/ and its path printed). See docs/fuzzing.md.
#
#   scripts/fuzz.sh                  # 30 s per target (what scripts/test.sh runs)
#   scripts/fuzz.sh 600              # the longer campaign quoted in the README
#   scripts/fuzz.sh 60 decode config # some targets only
#   scripts/fuzz.sh 0                # skip
#
# Uses `cargo +nightly fuzz` when a nightly toolchain is installed, else stable
# cargo (RAMPART_FUZZ_TOOLCHAIN=stable forces that); either way without a
# sanitizer (see docs/fuzzing.md for why).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

seconds=${1:-30}
[ $# -gt 0 ] && shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(decode config playbook_tests slack_interaction gunzip)
fi
if [ "$seconds" = 0 ]; then
  echo "fuzzing skipped (0 seconds per target)"
  exit 0
fi

# Longest input per target: a little above the largest seed.
declare -A max_len=(
  [decode]=16384 [config]=8192 [playbook_tests]=16384 [slack_interaction]=4096 [gunzip]=4096
)

ensure_build_deps
ensure_cargo_fuzz

# RAMPART_FUZZ_TOOLCHAIN=stable forces the stable path on a machine that has nightly.
toolchain=${RAMPART_FUZZ_TOOLCHAIN:-}
if [ -z "$toolchain" ] && command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then
  toolchain=nightly
fi
if [ "$toolchain" = nightly ]; then
  fuzz=(cargo +nightly fuzz)
else
  fuzz=(cargo fuzz)
  toolchain=stable
fi
root=$PWD
# Fuzz builds carry their own flags: keep them out of a shared CARGO_TARGET_DIR.
opts=(--sanitizer none --target-dir "$root/fuzz/target")
mkdir -p fuzz/target/logs

start=$SECONDS
echo "building fuzz targets ($toolchain toolchain)"
"${fuzz[@]}" build "${opts[@]}" >fuzz/target/logs/build.log 2>&1 || {
  tail -n 40 fuzz/target/logs/build.log >&2
  echo "fuzz build failed; full log in fuzz/target/logs/build.log" >&2
  exit 1
}
echo "built in $((SECONDS - start)) s"

# The value of `key: value` or `stat::key: value` in a libFuzzer log.
fuzzer_stat() { grep -o "$1: *[0-9]*" "$2" | tail -n 1 | grep -o '[0-9]*$' || echo "-"; }

summary=()
failed=0
for t in "${targets[@]}"; do
  corpus=$root/fuzz/corpus/$t
  log=$root/fuzz/target/logs/$t.log
  mkdir -p "$corpus"
  t0=$SECONDS
  # New inputs go to the first directory (kept between runs, not committed);
  # fuzz/seeds/<target> is only read.
  if "${fuzz[@]}" run "${opts[@]}" "$t" "$corpus" "$root/fuzz/seeds/$t" -- \
    -max_total_time="$seconds" -max_len="${max_len[$t]:-4096}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    failed=1
    artefact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | cut -d' ' -f5)
    result="CRASH ${artefact:-(no artefact; see $log)}"
    grep -m 1 -A 12 'panicked at\|ERROR: libFuzzer' "$log" >&2 || tail -n 30 "$log" >&2
  fi
  execs=$(fuzzer_stat 'stat::number_of_executed_units' "$log")
  rate=$(fuzzer_stat 'stat::average_exec_per_sec' "$log")
  files=$(find "$corpus" -type f | wc -l)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || echo "-")
  line=$(printf '%-18s %6ss %12s %9s %8s %7s  %s' "$t" "$((SECONDS - t0))" "$execs" "$rate" "$files" "$cov" "$result")
  echo "$line"
  summary+=("$line")
done

echo
echo "fuzzing, $seconds s per target ($toolchain, no sanitizer), $((SECONDS - start)) s in all:"
printf '%-18s %7s %12s %9s %8s %7s  %s\n' target time execs exec/s corpus cov result
printf '%s\n' "${summary[@]}"
exit $failed
