#!/usr/bin/env bash
# Installs what rampart's build and tests need on a fresh Debian machine; skips whatever is already there.
# Sourced by scripts/test.sh, scripts/bench.sh and scripts/fuzz.sh.

TANSU_VERSION=0.6.0
CARGO_FUZZ_VERSION=0.13.2

ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# tansu, the Kafka-compatible broker the tests run against; built once into ~/.cargo/bin.
ensure_tansu() {
  if command -v tansu >/dev/null 2>&1 && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return
  fi
  echo "building tansu $TANSU_VERSION (about 10 minutes, once per machine)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore
}

# cargo-fuzz, which builds and runs the fuzz targets in fuzz/ (scripts/fuzz.sh); built once into ~/.cargo/bin.
ensure_cargo_fuzz() {
  if cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    return
  fi
  echo "building cargo-fuzz $CARGO_FUZZ_VERSION (about two minutes, once per machine)"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
}

ensure_build_deps() {
  # librdkafka, OpenSSL, zlib and zstd are built from source by their -sys crates (Cargo.toml),
  # so only a C toolchain, make and perl are needed; python3 picks free ports for the tests;
  # chromium and its WebDriver drive the web console's test (tests/console.rs).
  ensure_apt build-essential perl python3 chromium chromium-driver
  export PATH="$HOME/.cargo/bin:$PATH"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a tansu broker with in-memory storage on a free loopback port; exports
# RAMPART_KAFKA_BROKERS and TANSU_PID. Logs go to target/tansu.log.
start_broker() {
  local port
  port=$(free_port)
  mkdir -p target
  tansu broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >target/tansu.log 2>&1 &
  TANSU_PID=$!
  export TANSU_PID
  export RAMPART_KAFKA_BROKERS="127.0.0.1:$port"
  local deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$TANSU_PID" 2>/dev/null; then
      echo "tansu did not start; its log:" >&2
      cat target/tansu.log >&2
      return 1
    fi
    sleep 0.2
  done
  echo "tansu broker on $RAMPART_KAFKA_BROKERS (pid $TANSU_PID)"
}

stop_broker() {
  if [ -n "${TANSU_PID:-}" ]; then
    kill "$TANSU_PID" 2>/dev/null || true
    wait "$TANSU_PID" 2>/dev/null || true
  fi
}
