#!/usr/bin/env bash
# Installs everything tapline's tests need on a Debian 12 machine, then fetches the
# third-party captures. Idempotent; run as root:  sudo tests/setup.sh
#   clang-19, llvm, libbpf-dev, bpftool   build the eBPF C programs (bpf/, xdp/)
#   iproute2, ethtool, iputils-ping       network namespaces, veth pairs, offloads
#   tcpdump, tshark, tcpreplay            capture, reference dissection, replay
#   python3, python3-scapy                test servers/clients and crafted pcaps
#   nginx-light, curl, jq, openssl,       real servers and clients; TLS peers for the uprobe
#   gnutls-bin, wrk, python3-venv         tests (OpenSSL, GnuTLS), HTTPS load
#   dpkg-dev                              `apt-get source` for scripts/fetch-captures.sh
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: run as root (apt-get install, deb-src sources)" >&2
    exit 3
fi

packages=(
    clang-19 llvm libbpf-dev bpftool linux-libc-dev
    iproute2 ethtool iputils-ping
    tcpdump tshark tcpreplay
    python3 python3-scapy
    nginx-light curl jq openssl gnutls-bin wrk python3-venv
    dpkg-dev xz-utils bzip2 gzip ca-certificates
)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    # tshark asks whether non-root users may capture; answer no, without a prompt.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "setup.sh: all packages present"
fi

"$(dirname "${BASH_SOURCE[0]}")/scripts/fetch-captures.sh"
