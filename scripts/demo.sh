#!/usr/bin/env bash
# The main job on a fresh Debian machine: install what the demo needs, build tapline, run
# `tapline demo` (capture sample traffic, import it, inspect it). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/demo.sh: run as root (the demo captures on the loopback interface)" >&2
    exit 3
fi
# tcpdump records the demo traffic; clang-19, libbpf-dev and linux-libc-dev build the eBPF
# programs that the tapline binary embeds (live capture).
need=()
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v cc >/dev/null || need+=(build-essential)
command -v clang-19 >/dev/null || need+=(clang-19)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -f /usr/include/linux/bpf.h ] || need+=(linux-libc-dev)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi
cargo build --release -p tapline
exec ./target/release/tapline demo "$@"
