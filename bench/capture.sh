#!/usr/bin/env bash
# bench/capture.sh: live capture — `tapline capture` (XDP ingress + TC egress eBPF) against
# `tcpdump -w` on the same veth in the same run, the sender's rate under capture, and the cost of
# capture to a real service.
#
# Run as root from anywhere:  sudo bench/capture.sh
# It installs what it lacks (tcpreplay, wrk, nginx-light, tcpdump, ethtool, clang-19, libbpf-dev),
# builds tapline (release), makes two network namespaces joined by a veth (MTU 1500, offloads off)
# and a capture to replay (GETs of a 64 KiB body from nginx: ~2/3 full-size packets, ~1/3 ACKs),
# unless $BENCH_PCAP names one. Then:
#   A. BENCH_RUNS times: `tcpreplay --topspeed` of the capture into the veth, with
#      `tapline capture --iface` and `tcpdump -w` (default buffer) both on the receiving end:
#      packets and bytes each captured per second, and the share each lost;
#   B. BENCH_RUNS times, alternating: the sender's rate (tcpreplay's pps) with tapline attached
#      against its rate with a bare XDP program that only counts (and with tcpdump alone);
#   C. BENCH_RUNS times, alternating: `wrk` against nginx across the veth with and without
#      `tapline capture` on the server's interface.
# prints markdown tables and writes them into bench/RESULTS.md between its own markers.
#
# Settings (environment):
#   BENCH_RUNS           runs of each measurement              (default 5)
#   BENCH_PCAP           capture to replay                     (default: made here, bench/data/capture-replay.pcap)
#   BENCH_PCAP_SECONDS   seconds of wrk traffic in that capture (default 4)
#   BENCH_RING_MIB       tapline's ring buffer, MiB            (default 64)
#   BENCH_WRK_SECONDS    duration of each wrk run              (default 10)
#   BENCH_WRITE_RESULTS  1: write bench/RESULTS.md             (default 1 when BENCH_RUNS >= 5)
#   BENCH_SKIP_BUILD=1   use target/release/tapline as it is
#   TAPLINE              tapline binary                        (default target/release/tapline)
# Quick check:  BENCH_RUNS=1 BENCH_WRK_SECONDS=3 bench/capture.sh
#
# Traffic stays inside the namespaces this script makes (10.98.0.1 <-> 10.98.0.2); they are
# removed on exit, also on failure or Ctrl-C. Exit: 0 done, 2 usage, 3 environment.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
RUNS=${BENCH_RUNS:-5}
RING_MIB=${BENCH_RING_MIB:-64}
WRK_SECONDS=${BENCH_WRK_SECONDS:-10}
PCAP_SECONDS=${BENCH_PCAP_SECONDS:-4}
DATA=$BENCH_DIR/data
PCAP=${BENCH_PCAP:-$DATA/capture-replay.pcap}
TAPLINE=${TAPLINE:-$ROOT/target/release/tapline}
RESULTS=$BENCH_DIR/RESULTS.md
if [[ $RUNS -ge 5 ]]; then WRITE_RESULTS=${BENCH_WRITE_RESULTS:-1}; else WRITE_RESULTS=${BENCH_WRITE_RESULTS:-0}; fi
COMMAND="BENCH_RUNS=$RUNS BENCH_RING_MIB=$RING_MIB BENCH_WRK_SECONDS=$WRK_SECONDS bench/capture.sh"

NS_TX=tlcap-tx-$$
NS_RX=tlcap-rx-$$
TX_IP=10.98.0.1
RX_IP=10.98.0.2
PORT=8080
WORK=$(mktemp -d /tmp/tapline-capture-bench.XXXXXX)
NGINX_PID=""
BG_PIDS=()
REPLAY=""

log() { printf 'capture.sh: %s\n' "$*" >&2; }
die() {
    local code=$1
    shift
    log "error: $*"
    exit "$code"
}

cleanup() {
    local rc=$?
    local pid
    for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null
    wait 2>/dev/null || true
    ip netns del "$NS_TX" 2>/dev/null || true
    ip netns del "$NS_RX" 2>/dev/null || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
ensure_tools() {
    [[ $(id -u) -eq 0 ]] || die 3 "run as root (network namespaces, eBPF, tcpdump): sudo $0"
    [[ $RUNS =~ ^[1-9][0-9]*$ ]] || die 2 "BENCH_RUNS=$RUNS: expected a positive number"
    local missing=()
    command -v tcpreplay >/dev/null || missing+=(tcpreplay)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v tcpdump >/dev/null || missing+=(tcpdump)
    command -v ethtool >/dev/null || missing+=(ethtool)
    command -v clang-19 >/dev/null || missing+=(clang-19)
    [[ -f /usr/include/bpf/bpf_helpers.h ]] || missing+=(libbpf-dev)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 || die 3 "apt-get update failed; install ${missing[*]} by hand"
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
            die 3 "could not install ${missing[*]}"
    fi
    if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
        log "building tapline (release)"
        (cd "$ROOT" && cargo build --release -p tapline >&2) || die 3 "cargo build --release -p tapline failed"
    fi
    [[ -x $TAPLINE ]] || die 3 "no tapline binary at $TAPLINE"
}

# ---------------------------------------------------------------- network, server, bare XDP
setup_net() {
    log "namespaces $NS_TX ($TX_IP) <-> $NS_RX ($RX_IP), veth MTU 1500, offloads off"
    ip netns add "$NS_TX"
    ip netns add "$NS_RX"
    ip -n "$NS_TX" link add eth0 type veth peer name eth0 netns "$NS_RX"
    local ns ip
    for ns in "$NS_TX" "$NS_RX"; do
        [[ $ns == "$NS_TX" ]] && ip=$TX_IP || ip=$RX_IP
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$ip/24" dev eth0
        ip netns exec "$ns" ethtool -K eth0 tso off gso off gro off tx off rx off >/dev/null 2>&1 ||
            log "warning: ethtool -K in $ns refused some offload change"
        ip -n "$ns" link set eth0 up
    done
}

start_nginx() {
    mkdir -p "$WORK/www" "$WORK/tmp"
    chmod 755 "$WORK" "$WORK/www"
    head -c 49152 /dev/zero | base64 -w 0 | head -c 65536 >"$WORK/www/large"
    head -c 1024 /dev/zero | base64 -w 0 | head -c 1024 >"$WORK/www/small"
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
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    server {
        listen $TX_IP:$PORT backlog=4096;
        root $WORK/www;
        location / { default_type application/octet-stream; etag off; }
    }
}
EOF
    ip netns exec "$NS_TX" nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/error.log" &
    NGINX_PID=$!
    local _
    for _ in $(seq 50); do
        if ip netns exec "$NS_RX" bash -c "exec 3<>/dev/tcp/$TX_IP/$PORT" 2>/dev/null; then return; fi
        sleep 0.1
    done
    die 3 "nginx did not start listening on $TX_IP:$PORT"
}

# A do-nothing XDP program that counts packets: the sender's reference rate.
build_bare_xdp() {
    cat >"$WORK/bare.bpf.c" <<'EOF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } tl_bare_count SEC(".maps");
SEC("xdp") int tl_bare(struct xdp_md *ctx) {
    __u32 zero = 0; __u64 *n = bpf_map_lookup_elem(&tl_bare_count, &zero);
    if (n) *n += 1;
    return XDP_PASS;
}
char _license[] SEC("license") = "GPL";
EOF
    clang-19 -target bpf -O2 -g -I "/usr/include/$(uname -m)-linux-gnu" -c "$WORK/bare.bpf.c" -o "$WORK/bare.bpf.o" ||
        die 3 "clang-19 cannot build the bare XDP program"
}

# ---------------------------------------------------------------- the capture to replay
make_pcap() {
    if [[ -s $PCAP ]]; then
        log "replaying $PCAP"
        return
    fi
    mkdir -p "$(dirname "$PCAP")"
    log "making $PCAP: ${PCAP_SECONDS}s of GET /large (64 KiB) with wrk"
    ip netns exec "$NS_RX" tcpdump -i eth0 -s 0 -B 262144 -Z root -w "$PCAP.tmp" "tcp port $PORT" 2>"$WORK/mk.err" &
    local pid=$!
    sleep 1
    ip netns exec "$NS_RX" wrk -t1 -c4 -d"${PCAP_SECONDS}s" "http://$TX_IP:$PORT/large" >/dev/null
    sleep 0.5
    kill -INT "$pid"
    wait "$pid" || true
    grep -q " 0 packets dropped by kernel" "$WORK/mk.err" || log "warning: tcpdump dropped packets making the capture"
    mv "$PCAP.tmp" "$PCAP"
}

# The replayed frames must not be for the receiving host, or its stack answers them (RSTs) and
# both captures see those too: give them MAC addresses nobody has.
rewrite_pcap() {
    REPLAY=$WORK/replay.pcap
    tcprewrite --enet-smac=02:00:00:7a:00:01 --enet-dmac=02:00:00:7a:00:02 -i "$PCAP" -o "$REPLAY" ||
        die 3 "tcprewrite failed on $PCAP"
}

PCAP_PACKETS=0
PCAP_BYTES=0
pcap_stats() {
    # One quiet replay counts packets and bytes as tcpreplay sees them.
    local out
    out=$(ip netns exec "$NS_TX" tcpreplay -i eth0 --topspeed "$REPLAY" 2>&1)
    PCAP_PACKETS=$(sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' <<<"$out" | head -1)
    PCAP_BYTES=$(sed -n 's/.*Actual: [0-9]* packets (\([0-9]*\) bytes).*/\1/p' <<<"$out" | head -1)
}

# ---------------------------------------------------------------- helpers
# replay: runs tcpreplay --topspeed; sets SENT, SENT_BYTES, SEND_SECS, SEND_PPS.
replay() {
    local out
    out=$(ip netns exec "$NS_TX" tcpreplay -i eth0 --topspeed "$REPLAY" 2>&1)
    SENT=$(sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' <<<"$out" | head -1)
    SENT_BYTES=$(sed -n 's/.*Actual: [0-9]* packets (\([0-9]*\) bytes).*/\1/p' <<<"$out" | head -1)
    SEND_SECS=$(sed -n 's/.*bytes) sent in \([0-9.]*\) seconds.*/\1/p' <<<"$out" | head -1)
    SEND_PPS=$(sed -n 's/.*Rated: .* \([0-9.]*\) pps.*/\1/p' <<<"$out" | head -1)
    [[ -n $SENT && -n $SEND_SECS ]] || die 3 "cannot read tcpreplay's report: $out"
}

TL_PID=""
# tapline_start NS IF SNAP: starts tapline capture and waits until it captures.
tapline_start() {
    rm -rf "$3"
    "$TAPLINE" capture --iface "$2" --netns "$1" --ring-mib "$RING_MIB" --out "$3" \
        >"$WORK/tl.out" 2>"$WORK/tl.err" &
    TL_PID=$!
    BG_PIDS+=("$TL_PID")
    local _
    for _ in $(seq 300); do
        grep -q "capturing" "$WORK/tl.err" 2>/dev/null && return
        kill -0 "$TL_PID" 2>/dev/null || die 3 "tapline capture failed: $(cat "$WORK/tl.err")"
        sleep 0.05
    done
    die 3 "tapline capture did not start: $(cat "$WORK/tl.err")"
}

# tapline_stop: SIGINT, wait; sets TL_CAPTURED, TL_MB, TL_RING_DROPS.
tapline_stop() {
    kill -INT "$TL_PID"
    wait "$TL_PID" || die 3 "tapline capture exited with an error: $(cat "$WORK/tl.err")"
    TL_CAPTURED=$(sed -n 's/^captured \([0-9]*\) packets.*/\1/p' "$WORK/tl.out")
    TL_MB=$(sed -n 's/^captured [0-9]* packets (\([0-9.]*\) MB).*/\1/p' "$WORK/tl.out")
    TL_RING_DROPS=$(sed -n 's/.*, \([0-9]*\) lost by tapline.*/\1/p' "$WORK/tl.out")
}

TD_PID=""
tcpdump_start() {
    ip netns exec "$1" tcpdump -i "$2" -s 0 -Z root -w "$3" 2>"$WORK/td.err" &
    TD_PID=$!
    BG_PIDS+=("$TD_PID")
    local _
    for _ in $(seq 200); do
        grep -q "listening on" "$WORK/td.err" 2>/dev/null && return
        sleep 0.05
    done
    die 3 "tcpdump did not start: $(cat "$WORK/td.err")"
}

# tcpdump_stop FILE: sets TD_CAPTURED, TD_DROPS, TD_MB.
tcpdump_stop() {
    kill -INT "$TD_PID"
    wait "$TD_PID" || true
    TD_CAPTURED=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$WORK/td.err")
    TD_DROPS=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$WORK/td.err")
    local size
    size=$(stat -c %s "$1")
    TD_MB=$(awk -v s="$size" -v n="$TD_CAPTURED" 'BEGIN { printf "%.1f", (s - 24 - 16 * n) / 1e6 }')
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { l = b - a; if (l < 0) l = 0; printf "%.3f", (b > 0 ? 100 * l / b : 0) }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
mbps() { awk -v m="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? m / s : 0) }'; }

# ---------------------------------------------------------------- A: side by side with tcpdump
ROWS_A=""
LOSS_TL=()
LOSS_TD=()
part_a() {
    log "A: tcpreplay --topspeed with tapline capture and tcpdump -w on the receiving veth, $RUNS runs"
    local run
    for run in $(seq "$RUNS"); do
        tapline_start "$NS_RX" eth0 "$WORK/snap"
        tcpdump_start "$NS_RX" eth0 "$WORK/td.pcap"
        replay
        sleep 2
        tcpdump_stop "$WORK/td.pcap"
        tapline_stop
        local tl_loss td_loss
        tl_loss=$(pct "$TL_CAPTURED" "$SENT")
        td_loss=$(pct "$TD_CAPTURED" "$SENT")
        LOSS_TL+=("$tl_loss")
        LOSS_TD+=("$td_loss")
        ROWS_A+="| $run | $SENT | $(rate "$SENT" "$SEND_SECS") | $TL_CAPTURED | $(rate "$TL_CAPTURED" "$SEND_SECS") | $(mbps "$TL_MB" "$SEND_SECS") | $tl_loss% | $TL_RING_DROPS | $TD_CAPTURED | $(rate "$TD_CAPTURED" "$SEND_SECS") | $(mbps "$TD_MB" "$SEND_SECS") | $td_loss% | $TD_DROPS |"$'\n'
        log "  run $run: sent $SENT in ${SEND_SECS}s; tapline $TL_CAPTURED (lost $tl_loss%, ring drops $TL_RING_DROPS); tcpdump $TD_CAPTURED (lost $td_loss%, kernel drops $TD_DROPS)"
        rm -rf "$WORK/snap" "$WORK/td.pcap"
    done
}

# ---------------------------------------------------------------- B: the sender's rate
PPS_BARE=()
PPS_TL=()
PPS_TD=()
part_b() {
    log "B: sender's rate: bare counting XDP vs tapline capture vs tcpdump alone, $RUNS runs each, alternating"
    local run
    for run in $(seq "$RUNS"); do
        ip -n "$NS_RX" link set dev eth0 xdpdrv obj "$WORK/bare.bpf.o" sec xdp
        replay
        PPS_BARE+=("$SEND_PPS")
        ip -n "$NS_RX" link set dev eth0 xdpdrv off
        tapline_start "$NS_RX" eth0 "$WORK/snap"
        replay
        PPS_TL+=("$SEND_PPS")
        tapline_stop
        rm -rf "$WORK/snap"
        tcpdump_start "$NS_RX" eth0 "$WORK/td.pcap"
        replay
        PPS_TD+=("$SEND_PPS")
        tcpdump_stop "$WORK/td.pcap"
        rm -f "$WORK/td.pcap"
        log "  run $run: bare ${PPS_BARE[-1]} pps, tapline ${PPS_TL[-1]} pps, tcpdump ${PPS_TD[-1]} pps"
    done
}

# ---------------------------------------------------------------- C: cost to a real service
RPS_OFF=()
RPS_ON=()
wrk_rps() {
    ip netns exec "$NS_RX" wrk -t2 -c32 -d"${WRK_SECONDS}s" "http://$TX_IP:$PORT/$1" |
        sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p'
}
part_c() {
    log "C: wrk -t2 -c32 -d${WRK_SECONDS}s against nginx (1 KiB body), without and with tapline capture on the server's veth, $RUNS runs"
    local run
    for run in $(seq "$RUNS"); do
        RPS_OFF+=("$(wrk_rps small)")
        tapline_start "$NS_TX" eth0 "$WORK/snap"
        RPS_ON+=("$(wrk_rps small)")
        tapline_stop
        rm -rf "$WORK/snap"
        log "  run $run: without ${RPS_OFF[-1]} req/s, with ${RPS_ON[-1]} req/s (tapline captured $TL_CAPTURED packets, ring drops $TL_RING_DROPS)"
    done
}

# ---------------------------------------------------------------- report
report() {
    local med_bare med_tl med_td med_off med_on lossless_tl lossless_td x
    med_bare=$(printf '%s\n' "${PPS_BARE[@]}" | median)
    med_tl=$(printf '%s\n' "${PPS_TL[@]}" | median)
    med_td=$(printf '%s\n' "${PPS_TD[@]}" | median)
    med_off=$(printf '%s\n' "${RPS_OFF[@]}" | median)
    med_on=$(printf '%s\n' "${RPS_ON[@]}" | median)
    lossless_tl=0
    lossless_td=0
    for x in "${LOSS_TL[@]}"; do [[ $x == 0.000 ]] && lossless_tl=$((lossless_tl + 1)); done
    for x in "${LOSS_TD[@]}"; do [[ $x == 0.000 ]] && lossless_td=$((lossless_td + 1)); done
    local ratio_tl ratio_td ratio_svc
    ratio_tl=$(awk -v a="$med_tl" -v b="$med_bare" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    ratio_td=$(awk -v a="$med_td" -v b="$med_bare" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    ratio_svc=$(awk -v a="$med_on" -v b="$med_off" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
    local med_loss_tl med_loss_td
    med_loss_tl=$(printf '%s\n' "${LOSS_TL[@]}" | median)
    med_loss_td=$(printf '%s\n' "${LOSS_TD[@]}" | median)
    local yes_no
    yes_no() { awk -v c="$1" 'BEGIN { print (c ? "yes" : "**no**") }'; }
    cat <<EOF
<!-- bench/capture.sh: begin -->
## Live capture: tapline (eBPF) vs tcpdump

- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%d GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine slows every tool alike only roughly)
- tapline: \`$("$TAPLINE" --version)\`; tcpdump $(tcpdump --version 2>&1 | head -1 | awk '{ print $3 }'), tcpreplay $(tcpreplay --version 2>&1 | head -1 | awk '{ print $3 }'), wrk, nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')
- Command (as root, from the repo root): \`$COMMAND\`
- Setup: two network namespaces joined by a veth (MTU 1500, offloads off). Replayed capture: $(basename "$PCAP"), $PCAP_PACKETS packets, $((PCAP_BYTES / 1000000)) MB (GETs of a 64 KiB body from nginx: full-size data packets and ACKs), rewritten by \`tcprewrite\` to MAC addresses nobody has so the receiving stack drops them unanswered. tapline: \`tapline capture --iface eth0 --ring-mib $RING_MIB\` (XDP native ingress, TC egress, no filter, whole packets, 2 reassembly workers, snapshot on disk); tcpdump: \`tcpdump -i eth0 -s 0 -w FILE\` (default buffer).

### A. Side by side on the receiving veth, \`tcpreplay --topspeed\` (rates over the sender's time)

| run | sent | sent pps | tapline packets | tapline pps | tapline MB/s | tapline lost | tapline ring drops | tcpdump packets | tcpdump pps | tcpdump MB/s | tcpdump lost | tcpdump kernel drops |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${ROWS_A}
Median share lost: tapline ${med_loss_tl}%, tcpdump ${med_loss_td}%. Runs without loss: tapline ${lossless_tl} of ${RUNS}, tcpdump ${lossless_td} of ${RUNS}.

### B. The sender's rate (tcpreplay pps, median of $RUNS)

| attached to the receiving veth | pps | × bare |
| --- | ---: | ---: |
| bare XDP program that only counts | $med_bare | 1.00 |
| tapline capture | $med_tl | $ratio_tl |
| tcpdump -w alone | $med_td | $ratio_td |

Runs (bare / tapline / tcpdump): $(paste -d/ <(printf '%s\n' "${PPS_BARE[@]}") <(printf '%s\n' "${PPS_TL[@]}") <(printf '%s\n' "${PPS_TD[@]}") | tr '\n' ' ')

### C. Cost to a real service: wrk -t2 -c32 against nginx (1 KiB body), median of $RUNS

| | requests/s | × without |
| --- | ---: | ---: |
| without capture | $med_off | 1.000 |
| tapline capture on the server's veth | $med_on | $ratio_svc |

Runs (without / with): $(paste -d/ <(printf '%s\n' "${RPS_OFF[@]}") <(printf '%s\n' "${RPS_ON[@]}") | tr '\n' ' ')

| aim (issue) | measured | met |
| --- | ---: | --- |
| no loss in 5 of 5 runs, ring ≤ 64 MiB | ${lossless_tl} of ${RUNS} (ring ${RING_MIB} MiB) | $(yes_no "$((lossless_tl == RUNS && RUNS >= 5 && RING_MIB <= 64))") |
| sender ≥ 0.9× its bare rate | ${ratio_tl}× | $(yes_no "$(awk -v r="$ratio_tl" 'BEGIN { print (r >= 0.9) }')") |
| service ≥ 0.97× its throughput without capture | ${ratio_svc}× | $(yes_no "$(awk -v r="$ratio_svc" 'BEGIN { print (r >= 0.97) }')") |
<!-- bench/capture.sh: end -->
EOF
}

write_results() {
    local section=$1
    [[ -f $RESULTS ]] || printf '# tapline benchmark results\n\nEach section is written by the script it names; rerun the command it shows to refresh it.\n' >"$RESULTS"
    if grep -q '<!-- bench/capture.sh: begin -->' "$RESULTS"; then
        awk -v file="$section" '
            /<!-- bench\/capture.sh: begin -->/ { while ((getline line < file) > 0) print line; skip = 1; next }
            /<!-- bench\/capture.sh: end -->/ { skip = 0; next }
            !skip { print }' "$RESULTS" >"$RESULTS.tmp"
        mv "$RESULTS.tmp" "$RESULTS"
    else
        { printf '\n'; cat "$section"; } >>"$RESULTS"
    fi
    log "wrote $RESULTS"
}

main() {
    ensure_tools
    setup_net
    start_nginx
    build_bare_xdp
    make_pcap
    rewrite_pcap
    pcap_stats
    part_a
    part_b
    part_c
    report >"$WORK/section.md"
    cat "$WORK/section.md"
    if [[ $WRITE_RESULTS == 1 ]]; then write_results "$WORK/section.md"; fi
}

main "$@"
