#!/usr/bin/env bash
# bench/import.sh: race `tapline import` against `tshark -q -z http,tree` on two captures made here.
#
# Run as root from anywhere:  sudo bench/import.sh
# It installs what it lacks (nginx-light, tcpdump, tshark, iproute2, ethtool, jq, time, linux-perf),
# builds tapline and the load generator, makes two captures of real HTTP/1.1 traffic between two
# network namespaces joined by a veth (MTU 1500, offloads off, so packets are wire-sized):
#   small: many GETs of a ~100 B body (~200-300 MB of pcap, packets ~150-200 B on average)
#   large: GETs of a 64 KiB body (~300 MB of pcap)
# then times, in the same run, tshark, `tapline import --workers 1` and `--workers 2` on each,
# takes the median of BENCH_RUNS runs, checks tapline's pair count against the requests the load
# generator completed, profiles `tapline import` with perf, prints a markdown table and writes it
# into bench/RESULTS.md.
#
# Settings (environment):
#   BENCH_SMALL_REQUESTS  requests of the small capture     (default 600000)
#   BENCH_LARGE_REQUESTS  requests of the large capture     (default 4200)
#   BENCH_CONNECTIONS     load generator connections        (default 8)
#   BENCH_RUNS            timed runs of each tool, median   (default 3)
#   BENCH_DATA            where captures and snapshots go   (default bench/data, git-ignored)
#   BENCH_REUSE=1         keep captures from an earlier run with the same request counts
#   BENCH_PROFILE=0       skip the profile
#   BENCH_WRITE_RESULTS   1: write bench/RESULTS.md (default: 1 only at the default sizes)
#   BENCH_SKIP_BUILD=1    use the binaries already in target/release
#   TAPLINE               tapline binary                    (default target/release/tapline)
# Quick check:  BENCH_SMALL_REQUESTS=20000 BENCH_LARGE_REQUESTS=200 BENCH_RUNS=1 bench/import.sh
#
# Traffic stays inside the two namespaces this script makes (10.99.0.1 <-> 10.99.0.2); they are
# removed on exit, also on failure or Ctrl-C. Exit: 0 all checks passed, 1 a check failed
# (FAIL lines say which), 2 usage, 3 environment.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
DEFAULT_SMALL=600000
DEFAULT_LARGE=4200
SMALL_N=${BENCH_SMALL_REQUESTS:-$DEFAULT_SMALL}
LARGE_N=${BENCH_LARGE_REQUESTS:-$DEFAULT_LARGE}
CONNS=${BENCH_CONNECTIONS:-8}
RUNS=${BENCH_RUNS:-3}
DATA=${BENCH_DATA:-$BENCH_DIR/data}
REUSE=${BENCH_REUSE:-0}
PROFILE=${BENCH_PROFILE:-1}
if [[ $SMALL_N == "$DEFAULT_SMALL" && $LARGE_N == "$DEFAULT_LARGE" && $RUNS -ge 3 ]]; then
    WRITE_RESULTS=${BENCH_WRITE_RESULTS:-1}
else
    WRITE_RESULTS=${BENCH_WRITE_RESULTS:-0}
fi
TAPLINE=${TAPLINE:-$ROOT/target/release/tapline}
LOADGEN=$ROOT/target/release/loadgen
RESULTS=$BENCH_DIR/RESULTS.md
COMMAND="BENCH_SMALL_REQUESTS=$SMALL_N BENCH_LARGE_REQUESTS=$LARGE_N BENCH_CONNECTIONS=$CONNS BENCH_RUNS=$RUNS bench/import.sh"
[[ $REUSE == 1 ]] && COMMAND="BENCH_REUSE=1 $COMMAND (captures made by an earlier run of the same command)"

NS_SRV=tlbench-srv-$$
NS_CLI=tlbench-cli-$$
SRV_IP=10.99.0.1
CLI_IP=10.99.0.2
PORT=8080
WORK=""
NGINX_PID=""
TCPDUMP_PID=""
FAILS=0
LOAD_START=""

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'import.sh: %s\n' "$2" >&2; exit "$1"; }
fail() { printf 'FAIL: %s\n' "$*"; FAILS=$((FAILS + 1)); }

for v in SMALL_N LARGE_N CONNS RUNS; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die 2 "$v must be a positive integer, got '${!v}'"
done

cleanup() {
    local rc=$?
    [[ -n $TCPDUMP_PID ]] && kill "$TCPDUMP_PID" 2>/dev/null && wait "$TCPDUMP_PID" 2>/dev/null
    [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
    ip netns del "$NS_SRV" 2>/dev/null || true
    ip netns del "$NS_CLI" 2>/dev/null || true
    [[ -n $WORK ]] && rm -rf "$WORK"
    rm -rf "$DATA"/snap-*
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
ensure_tools() {
    [[ $(id -u) -eq 0 ]] || die 3 "run as root (network namespaces, tcpdump): sudo $0"
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v tcpdump >/dev/null || missing+=(tcpdump)
    command -v tshark >/dev/null || missing+=(tshark)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v ethtool >/dev/null || missing+=(ethtool)
    command -v jq >/dev/null || missing+=(jq)
    [[ -x /usr/bin/time ]] || missing+=(time)
    if [[ $PROFILE == 1 ]] && ! command -v perf >/dev/null; then missing+=(linux-perf); fi
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 || die 3 "apt-get update failed; install ${missing[*]} by hand"
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
            die 3 "could not install ${missing[*]}"
    fi
    command -v cargo >/dev/null || [[ ${BENCH_SKIP_BUILD:-0} == 1 ]] ||
        die 3 "cargo not found (install Rust, or set BENCH_SKIP_BUILD=1 with built binaries)"
}

build() {
    if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
        log "building tapline and loadgen (release)"
        (cd "$ROOT" && cargo build --release -p tapline -p tapline-bench --bin tapline --bin loadgen >&2) ||
            die 3 "cargo build --release -p tapline -p tapline-bench failed"
    fi
    [[ -x $TAPLINE ]] || die 3 "no tapline binary at $TAPLINE"
    [[ -x $LOADGEN ]] || die 3 "no loadgen binary at $LOADGEN"
}

# ---------------------------------------------------------------- network and server
setup_net() {
    log "namespaces $NS_SRV ($SRV_IP) <-> $NS_CLI ($CLI_IP), veth MTU 1500, offloads off"
    ip netns add "$NS_SRV"
    ip netns add "$NS_CLI"
    ip -n "$NS_SRV" link add eth0 type veth peer name eth0 netns "$NS_CLI"
    local ns ip
    for ns in "$NS_SRV" "$NS_CLI"; do
        [[ $ns == "$NS_SRV" ]] && ip=$SRV_IP || ip=$CLI_IP
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 mtu 1500
        ip -n "$ns" addr add "$ip/24" dev eth0
        ip netns exec "$ns" ethtool -K eth0 tso off gso off gro off tx off rx off >/dev/null 2>&1 ||
            log "warning: ethtool -K in $ns refused some offload change"
        ip -n "$ns" link set eth0 up
    done
    local off
    off=$(ip netns exec "$NS_CLI" ethtool -k eth0 |
        grep -E '^(tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload):' |
        grep -c ': on' || true)
    [[ $off == 0 ]] || die 3 "offloads still on in $NS_CLI: $(ip netns exec "$NS_CLI" ethtool -k eth0 | grep -E 'segmentation|receive-offload')"
}

start_nginx() {
    mkdir -p "$WORK/www" "$WORK/tmp"
    chmod 755 "$WORK" "$WORK/www" # nginx workers run as an unprivileged user
    # A 64 KiB body (printable, so tshark and people can read it).
    head -c 49152 /dev/zero | base64 -w 0 | head -c 65536 >"$WORK/www/large"
    local small
    small=$(printf 'tapline-bench small body %.0s' 1 2 3 4)
    small=${small:0:100}
    cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server_tokens off;
    keepalive_requests 2000000000;
    keepalive_timeout 600s;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    server {
        listen $SRV_IP:$PORT backlog=4096;
        root $WORK/www;
        location = /small { default_type ""; return 200 "$small"; }
        location = /large { default_type application/octet-stream; etag off; }
    }
}
EOF
    ip netns exec "$NS_SRV" nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/error.log" &
    NGINX_PID=$!
    local _
    for _ in $(seq 50); do
        if ip netns exec "$NS_CLI" bash -c "exec 3<>/dev/tcp/$SRV_IP/$PORT" 2>/dev/null; then
            log "nginx up (pid $NGINX_PID, config $WORK/nginx.conf)"
            return
        fi
        sleep 0.1
    done
    cat "$WORK/error.log" >&2 || true
    die 3 "nginx did not start listening on $SRV_IP:$PORT"
}

# ---------------------------------------------------------------- captures
# capture NAME PATH REQUESTS: writes $DATA/NAME.pcap and $DATA/NAME.meta (key=value lines).
capture() {
    local name=$1 path=$2 n=$3 pcap=$DATA/$1.pcap meta=$DATA/$1.meta
    if [[ $REUSE == 1 && -s $pcap && -s $meta ]] && grep -qx "requested=$n" "$meta"; then
        log "reusing $pcap ($(grep '^completed=' "$meta"))"
        return
    fi
    rm -f "$pcap" "$meta"
    [[ -n $NGINX_PID ]] || { setup_net; start_nginx; }
    log "capture $name: $n GETs of $path over $CONNS connections"
    ip netns exec "$NS_CLI" tcpdump -i eth0 -s 0 -B 262144 -Z root -w "$pcap" \
        "tcp port $PORT" 2>"$WORK/tcpdump.$name.err" &
    TCPDUMP_PID=$!
    local _
    for _ in $(seq 100); do
        grep -q 'listening on' "$WORK/tcpdump.$name.err" 2>/dev/null && break
        sleep 0.05
    done
    local out rc=0
    out=$(ip netns exec "$NS_CLI" "$LOADGEN" --target "$SRV_IP:$PORT" --requests "$n" \
        --connections "$CONNS" --path "$path" --deadline-secs 240) || rc=$?
    # libpcap hands packets over in blocks that retire after up to a second: wait for the last
    # block, or the tail of the capture (the last responses and FINs) is lost on SIGINT.
    sleep 2
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=""
    log "loadgen: $out"
    [[ $rc == 0 ]] || fail "capture $name: loadgen completed fewer than $n requests (exit $rc): $out"
    local completed captured received dropped size
    completed=$(kv completed "$out")
    captured=$(awk '/packets captured/ {print $1}' "$WORK/tcpdump.$name.err")
    received=$(awk '/packets received by filter/ {print $1}' "$WORK/tcpdump.$name.err")
    dropped=$(awk '/packets dropped by kernel/ {print $1}' "$WORK/tcpdump.$name.err")
    size=$(stat -c %s "$pcap")
    ((dropped == 0)) || fail "capture $name: tcpdump dropped $dropped packets; pair counts will not match"
    ((received == captured + dropped)) ||
        fail "capture $name: the kernel passed $received packets to tcpdump, which wrote $captured"
    {
        echo "requested=$n"
        echo "completed=$completed"
        echo "packets=$captured"
        echo "dropped=$dropped"
        echo "received=$received"
        echo "bytes=$size"
        echo "path=$path"
        echo "loadgen=$out"
    } >"$meta"
}

kv() { tr ' ' '\n' <<<"$2" | awk -v k="$1=" 'index($0, k) == 1 && !done { print substr($0, length(k) + 1); done = 1 }'; }
meta() { awk -v k="$2=" 'index($0, k) == 1 && !done { print substr($0, length(k) + 1); done = 1 }' "$DATA/$1.meta"; }

# ---------------------------------------------------------------- timed runs
# timed LABEL CMD...: runs CMD, appends "wall user sys maxrss_kib" to $WORK/times.LABEL.
timed() {
    local label=$1 t0 t1
    shift
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%U %S %M' -o "$WORK/rusage" "$@" >"$WORK/out.$label" 2>&1 || {
        cat "$WORK/out.$label" >&2
        die 1 "$label failed: $*"
    }
    t1=$EPOCHREALTIME
    printf '%s %s\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')" \
        "$(tail -1 "$WORK/rusage")" >>"$WORK/times.$label"
}

# median of column COL (1-based) of FILE
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

race() {
    local name=$1 pcap=$DATA/$1.pcap snap=$DATA/snap-$1 run w
    cat "$pcap" >/dev/null # page cache: every tool reads from memory
    for run in $(seq "$RUNS"); do
        log "race $name: run $run of $RUNS"
        timed "$name-tshark" tshark -n -r "$pcap" -q -z http,tree
        for w in 1 2; do
            rm -rf "$snap"
            sync
            timed "$name-w$w" "$TAPLINE" import "$pcap" --out "$snap" --workers "$w"
            check_snapshot "$name" "$snap" "w$w" "$run"
        done
    done
    if [[ $name == small ]]; then
        # The contract's other count: one JSON object per pair from `inspect`.
        local lines
        lines=$("$TAPLINE" inspect "$snap" --format jsonl | wc -l)
        [[ $lines == "$(meta "$name" completed)" ]] ||
            fail "$name: tapline inspect --format jsonl printed $lines pairs, loadgen completed $(meta "$name" completed)"
        echo "inspect_jsonl=$lines" >>"$WORK/check.$name"
    fi
    rm -rf "$snap"
    local req resp
    req=$(awk '/HTTP Request Packets/ {print $4}' "$WORK/out.$name-tshark")
    resp=$(awk '/HTTP Response Packets/ {print $4}' "$WORK/out.$name-tshark")
    echo "tshark_requests=${req:-0} tshark_responses=${resp:-0}" >>"$WORK/check.$name"
}

check_snapshot() {
    local name=$1 snap=$2 label=$3 run=$4 m=$2/manifest.json
    [[ -s $m ]] || { fail "$name $label: no $m"; return; }
    local pairs incomplete packets completed
    pairs=$(jq -r '.counts.rrpairs' "$m")
    incomplete=$(jq -r '.counts.incomplete_rrpairs // 0' "$m")
    packets=$(jq -r '.counts.packets' "$m")
    completed=$(meta "$name" completed)
    if [[ $pairs != "$completed" || $incomplete != 0 ]]; then
        fail "$name $label run $run: tapline found $pairs pairs ($incomplete incomplete), loadgen completed $completed"
    fi
    [[ $packets == "$(meta "$name" packets)" ]] ||
        fail "$name $label run $run: tapline read $packets packets, tcpdump captured $(meta "$name" packets)"
    if [[ $run == 1 ]]; then
        echo "$label rrpairs=$pairs incomplete=$incomplete packets=$packets" >>"$WORK/check.$name"
        cp "$WORK/out.$name-$label" "$WORK/summary.$name-$label"
    fi
}

# ---------------------------------------------------------------- profile and report
# shellcheck source=bench/lib/profile.sh
source "$BENCH_DIR/lib/profile.sh"
# shellcheck source=bench/lib/report.sh
source "$BENCH_DIR/lib/report.sh"

# ---------------------------------------------------------------- main
main() {
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    ensure_tools
    build
    mkdir -p "$DATA"
    rm -rf "$DATA"/snap-*
    WORK=$(mktemp -d /tmp/tapline-bench.XXXXXX)
    capture small /small "$SMALL_N"
    capture large /large "$LARGE_N"
    if [[ -n $NGINX_PID ]]; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=""
        ip netns del "$NS_SRV"
        ip netns del "$NS_CLI"
    fi
    race small
    race large
    [[ $PROFILE == 1 ]] && profile
    report
    if ((FAILS)); then
        echo "FAIL: $FAILS check(s) failed"
        exit 1
    fi
    echo "OK: all checks passed"
}

main "$@"
