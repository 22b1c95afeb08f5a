#!/usr/bin/env bash
# Every test on a fresh Debian machine: install the tools the tests use (real servers, tcpdump,
# tshark, clang-19 for the eBPF programs, scapy, Debian's sample captures), then run the whole
# workspace's tests with nextest (cargo test when nextest is missing). Run as root so the
# privileged tests run; set TAPLINE_REQUIRE_PRIVILEGED=1 to make their skips failures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cargo build --release -p tapline
export TAPLINE_BIN="$PWD/target/release/tapline"
if command -v cargo-nextest >/dev/null; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
