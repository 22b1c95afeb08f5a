#!/usr/bin/env bash
# Fetches real captures that nobody on this project wrote: the test captures shipped in
# Debian's wireshark and tcpdump source packages. They land in tests/data/cache/ (git-ignored):
#   tests/data/cache/src/        the downloaded source packages (.dsc, .orig.tar.*, ...)
#   tests/data/cache/captures/wireshark/   wireshark's test/captures/*
#   tests/data/cache/captures/tcpdump/     tcpdump's tests/*.pcap, *.pcapng
# Gzipped captures are stored decompressed.
# Idempotent: does nothing when both folders are already filled. Needs root only to add a
# deb-src entry to apt's sources when there is none (for the same suite as the deb entry).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${TAPLINE_CAPTURES_CACHE:-$here/../data/cache}"
mkdir -p "$cache/src" "$cache/captures"
cache="$(cd "$cache" && pwd)"

have_captures() {
    local dir="$cache/captures/$1"
    [ -d "$dir" ] && [ -n "$(find "$dir" -type f -print -quit)" ]
}

if have_captures wireshark && have_captures tcpdump; then
    echo "fetch-captures: already in $cache/captures"
    exit 0
fi

for tool in apt-get tar; do
    command -v "$tool" >/dev/null || { echo "fetch-captures: $tool is required" >&2; exit 3; }
done

# apt-get source needs deb-src entries. Debian 12 images use deb822 .sources files.
if ! apt-get source --download-only --print-uris tcpdump >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "fetch-captures: no deb-src entries and not root to add them; run as root" >&2
        exit 3
    fi
    src_list=/etc/apt/sources.list.d/tapline-deb-src.sources
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        # The same URIs, suites and components as the binary entries, as deb-src.
        sed -e 's/^Types:.*deb\b.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$src_list"
    elif [ -f /etc/apt/sources.list ]; then
        grep -E '^deb ' /etc/apt/sources.list | sed -e 's/^deb /deb-src /' \
            >/etc/apt/sources.list.d/tapline-deb-src.list
    else
        echo "fetch-captures: cannot find apt sources to derive deb-src entries from" >&2
        exit 3
    fi
    apt-get update -qq
fi

cd "$cache/src"
for pkg in wireshark tcpdump; do
    if ! ls "$cache/src/${pkg}"_*.orig.tar.* >/dev/null 2>&1; then
        echo "fetch-captures: downloading the $pkg source package"
        apt-get source --download-only -qq "$pkg"
    fi
done

extract() { # PKG INNER-PATTERN...
    local pkg="$1"; shift
    local dest="$cache/captures/$pkg"
    local tarball
    tarball="$(ls "$cache/src/${pkg}"_*.orig.tar.* | grep -v '\.asc$' | head -n 1)"
    local tmp="$cache/captures/.$pkg.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    tar -xf "$tarball" -C "$tmp" --wildcards --no-anchored "$@"
    rm -rf "$dest" && mkdir -p "$dest"
    # Flatten: one folder of capture files per package.
    find "$tmp" -type f -exec mv -t "$dest" {} +
    rm -rf "$tmp"
    # Compressed captures (NAME.pcap.gz) are imported decompressed.
    find "$dest" -type f -name '*.gz' -exec gunzip -f {} +
    echo "fetch-captures: $(find "$dest" -type f | wc -l) files in $dest"
}

have_captures wireshark || extract wireshark '*/test/captures/*'
have_captures tcpdump || extract tcpdump '*/tests/*.pcap' '*/tests/*.pcapng'
