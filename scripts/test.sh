#!/usr/bin/env bash
# Runs every check and test of progress-hub, installing what it needs first
# (Debian packages when run as root, npm packages for the browser tests).
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/progress-hub/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# No incremental caches: CI builds once per run, and they grow the shared
# target dir by gigabytes a day.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
step() { printf '\n==> %s\n' "$*"; }

# --- system packages: chromium (browser tests), prometheus (promtool checks
# the alert rules), tmux (terminal UI test). No test needs Redis or NATS yet:
# the hub has no backplane.
need=()
for pair in chromium:chromium promtool:prometheus tmux:tmux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  # As root, or through sudo when it needs no password; else say what to install.
  as_root=()
  [ "$(id -u)" = 0 ] || as_root=(sudo -n)
  if command -v apt-get >/dev/null && { [ ${#as_root[@]} = 0 ] || sudo -n true 2>/dev/null; }; then
    step "installing ${need[*]}"
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing system packages: ${need[*]}; install them (apt-get install ${need[*]}) or run this as root or with passwordless sudo" >&2
    exit 1
  fi
fi

# --- npm packages for the browser tests (playwright-core only: no browser download).
if [ -f tests/e2e/package.json ]; then
  step "npm packages for tests/e2e"
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
# --- the benchmark's Socket.IO peer: the bench smoke test measures one tiny
# round against it (crates/hub-bench/tests/smoke.rs).
step "npm packages for bench/socketio"
(cd bench/socketio && npm ci --no-audit --no-fund --loglevel=error)

step "cargo fmt --check"
cargo fmt --all -- --check
# fuzz/ is its own crate outside the workspace; check its targets too.
rustfmt --check --edition 2021 fuzz/fuzz_targets/*.rs

step "cargo clippy -D warnings (rustc warnings included)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo doc -D warnings (broken or private intra-doc links)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo build (the binary the browser tests run)"
cargo build --workspace --bins

step "cargo test"
cargo test --workspace --no-fail-fast

# --- the alert rules operators load (docs/OPERATIONS.md): syntax, and unit
# tests that the main alerts fire on synthetic series. The Grafana dashboard
# and the rules are checked against the exported metric names by
# crates/progress-hub/tests/metrics.rs.
step "promtool check rules / test rules (deploy/prometheus)"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml

if [ -f tests/e2e/package.json ]; then
  step "browser tests (Chromium)"
  export PROGRESS_HUB_BIN="$CARGO_TARGET_DIR/debug/progress-hub"
  export E2E_SCREENSHOT_DIR="${E2E_SCREENSHOT_DIR:-$PWD/tests/e2e/screenshots}"
  (cd tests/e2e && npm test)
  echo "screenshots: $E2E_SCREENSHOT_DIR"
fi
# --- supply chain: banned crates (a second crypto stack), licenses, sources.
# The advisory database needs a download CI cannot make, so `advisories` stays out.
step "cargo deny check bans licenses sources"
command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny
cargo deny check bans licenses sources

# --- fuzzing, bounded: 60 s per target, no sanitizer (-s none), so the stable
# toolchain builds it; its own target dir under the shared cache.
step "cargo fuzz (60 s per target)"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
for target in decode_client core_sequence; do
  log="$CARGO_TARGET_DIR/fuzz-$target.log"
  if (cd fuzz && CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fuzz" cargo fuzz run "$target" -s none -- \
        -max_total_time=60 -print_final_stats=1) >"$log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units)' "$log" | sed "s/^/$target: /"
  else
    tail -n 60 "$log"
    echo "fuzz target $target failed (crash input under fuzz/artifacts/$target)" >&2
    exit 1
  fi
done

step "all checks passed"
