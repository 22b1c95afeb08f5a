#!/usr/bin/env bash
# The main job on a fresh Debian machine: install what the demo needs, build tapline, run
# `tapline demo` (capture sample traffic, import it, inspect it). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/demo.sh: run as root (the demo captures on the loopback interface)" >&2
    exit 3
fi
need=()
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v cc >/dev/null || need+=(build-essential)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi
cargo build --release -p tapline
exec ./target/release/tapline demo "$@"
