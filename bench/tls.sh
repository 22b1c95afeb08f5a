#!/usr/bin/env bash
# bench/tls.sh: the cost of TLS plaintext capture (uprobes on OpenSSL and syscall tracepoints) to
# a TLS service: wrk over HTTPS against nginx with TLS, without capture, with
# `tapline capture --pid <nginx worker>` (only the server's side is kept), and with
# `tapline capture --tls` (every process: wrk's side is probed and kept too).
#
# Run as root from anywhere:  sudo bench/tls.sh
# It installs what it lacks (wrk, nginx-light, openssl, clang-19, libbpf-dev), builds tapline
# (release), makes two network namespaces joined by a veth, starts nginx with TLS (one worker, a
# self-signed certificate, a 1 KiB file) in one, and runs wrk from the other, for two workloads:
#   keep-alive   `wrk -t1 -cC` (TLS sessions kept open, many requests each);
#   new conns    the same with `-H 'Connection: close'`: nginx closes after each response, so
#                every request is a new TCP connection and a full TLS handshake.
# Each workload runs BENCH_RUNS times, alternating without / --pid / --tls, and the median
# requests/s of each is compared with the one without capture.
# It prints a markdown section and writes it into bench/RESULTS.md between its own markers.
#
# Settings (environment):
#   BENCH_RUNS           runs of each configuration               (default 5)
#   BENCH_WRK_SECONDS    duration of each wrk run                 (default 10)
#   BENCH_CONNECTIONS    wrk connections                          (default 16)
#   BENCH_WRITE_RESULTS  1: write bench/RESULTS.md                (default 1 when BENCH_RUNS >= 5)
#   BENCH_SKIP_BUILD=1   use target/release/tapline as it is
#   TAPLINE              tapline binary                           (default target/release/tapline)
# Quick check:  BENCH_RUNS=1 BENCH_WRK_SECONDS=3 bench/tls.sh
#
# Traffic stays inside the namespaces this script makes (10.97.0.1 <-> 10.97.0.2); they are
# removed on exit, also on failure or Ctrl-C. Exit: 0 done, 2 usage, 3 environment.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
RUNS=${BENCH_RUNS:-5}
WRK_SECONDS=${BENCH_WRK_SECONDS:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
TAPLINE=${TAPLINE:-$ROOT/target/release/tapline}
RESULTS=$BENCH_DIR/RESULTS.md
if [[ $RUNS -ge 5 ]]; then WRITE_RESULTS=${BENCH_WRITE_RESULTS:-1}; else WRITE_RESULTS=${BENCH_WRITE_RESULTS:-0}; fi
COMMAND="BENCH_RUNS=$RUNS BENCH_WRK_SECONDS=$WRK_SECONDS BENCH_CONNECTIONS=$CONNECTIONS bench/tls.sh"

NS_SRV=tltls-srv-$$
NS_CLI=tltls-cli-$$
SRV_IP=10.97.0.1
CLI_IP=10.97.0.2
PORT=8443
WORK=$(mktemp -d /tmp/tapline-tls-bench.XXXXXX)
NGINX_PID=""
WORKER_PID=""
BG_PIDS=()
ka_lost=0
close_lost=0

log() { printf 'tls.sh: %s\n' "$*" >&2; }
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
    ip netns del "$NS_SRV" 2>/dev/null || true
    ip netns del "$NS_CLI" 2>/dev/null || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
ensure_tools() {
    [[ $(id -u) -eq 0 ]] || die 3 "run as root (network namespaces, eBPF): sudo $0"
    [[ $RUNS =~ ^[1-9][0-9]*$ ]] || die 2 "BENCH_RUNS=$RUNS: expected a positive number"
    [[ $WRK_SECONDS =~ ^[1-9][0-9]*$ ]] || die 2 "BENCH_WRK_SECONDS=$WRK_SECONDS: expected a positive number"
    [[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die 2 "BENCH_CONNECTIONS=$CONNECTIONS: expected a positive number"
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v openssl >/dev/null || missing+=(openssl)
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

# ---------------------------------------------------------------- network, server
setup_net() {
    log "namespaces $NS_SRV ($SRV_IP) <-> $NS_CLI ($CLI_IP)"
    ip netns add "$NS_SRV"
    ip netns add "$NS_CLI"
    ip -n "$NS_SRV" link add eth0 type veth peer name eth0 netns "$NS_CLI"
    local ns ip
    for ns in "$NS_SRV" "$NS_CLI"; do
        [[ $ns == "$NS_SRV" ]] && ip=$SRV_IP || ip=$CLI_IP
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$ip/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
}

start_nginx() {
    mkdir -p "$WORK/www" "$WORK/tmp"
    chmod 755 "$WORK" "$WORK/www"
    head -c 768 /dev/zero | base64 -w 0 | head -c 1024 >"$WORK/www/small"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=tapline-bench -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null ||
        die 3 "openssl could not make a certificate"
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
        listen $SRV_IP:$PORT ssl backlog=4096;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        root $WORK/www;
        location / { default_type application/octet-stream; etag off; }
    }
}
EOF
    ip netns exec "$NS_SRV" nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/error.log" &
    NGINX_PID=$!
    local _
    for _ in $(seq 50); do
        WORKER_PID=$(awk '{ print $1 }' "/proc/$NGINX_PID/task/$NGINX_PID/children" 2>/dev/null || true)
        if [[ -n $WORKER_PID ]] &&
            ip netns exec "$NS_CLI" bash -c "exec 3<>/dev/tcp/$SRV_IP/$PORT" 2>/dev/null; then
            log "nginx master $NGINX_PID, worker $WORKER_PID, https://$SRV_IP:$PORT/small"
            return
        fi
        sleep 0.1
    done
    die 3 "nginx did not start listening on $SRV_IP:$PORT: $(cat "$WORK/error.log" 2>/dev/null)"
}

# ---------------------------------------------------------------- helpers
TL_PID=""
# tapline_start ARGS...: starts tapline capture with ARGS and waits until its probes are set.
tapline_start() {
    rm -rf "$WORK/snap"
    "$TAPLINE" capture "$@" --out "$WORK/snap" >"$WORK/tl.out" 2>"$WORK/tl.err" &
    TL_PID=$!
    BG_PIDS+=("$TL_PID")
    local _
    for _ in $(seq 600); do
        grep -q "probing " "$WORK/tl.err" 2>/dev/null && return
        kill -0 "$TL_PID" 2>/dev/null || die 3 "tapline capture failed: $(cat "$WORK/tl.err")"
        sleep 0.05
    done
    die 3 "tapline capture did not start: $(cat "$WORK/tl.err")"
}

# tapline_stop: SIGINT, wait; sets TL_PAIRS, TL_CHUNKS, TL_LOST (TLS bytes not copied).
tapline_stop() {
    kill -INT "$TL_PID"
    wait "$TL_PID" || die 3 "tapline capture exited with an error: $(cat "$WORK/tl.err")"
    TL_PAIRS=$(sed -n 's/.* \([0-9]*\) request\/response pairs.*/\1/p' "$WORK/tl.out" | head -1)
    TL_CHUNKS=$(sed -n 's/.*TLS: \([0-9]*\) plaintext chunks captured.*/\1/p' "$WORK/tl.out" | head -1)
    TL_LOST=$(sed -n 's/.*captured, \([0-9]*\) bytes could not be copied.*/\1/p' "$WORK/tl.out" | head -1)
    rm -rf "$WORK/snap"
}

# wrk_run [HEADER...]: one wrk run; sets RPS and REQUESTS.
wrk_run() {
    local out
    out=$(ip netns exec "$NS_CLI" wrk -t1 -c"$CONNECTIONS" -d"${WRK_SECONDS}s" "$@" "https://$SRV_IP:$PORT/small" 2>&1) ||
        die 3 "wrk failed: $out"
    RPS=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
    REQUESTS=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")
    [[ -n $RPS && -n $REQUESTS ]] || die 3 "cannot read wrk's report: $out"
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then log "  wrk: $(grep "Non-2xx\|Socket errors" <<<"$out" | tr -s ' ')"; fi
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }

# ---------------------------------------------------------------- the runs
# measure NAME [HEADER...]: BENCH_RUNS times without / --pid / --tls; fills the arrays NAME_off,
# NAME_pid, NAME_all (req/s) and NAME_cov_pid, NAME_cov_all (pairs captured / requests wrk
# completed), NAME_lost (TLS bytes not copied, summed).
measure() {
    local name=$1
    shift
    local run lost=0
    declare -g -a "${name}_off=()" "${name}_pid=()" "${name}_all=()" "${name}_cov_pid=()" "${name}_cov_all=()"
    for run in $(seq "$RUNS"); do
        wrk_run "$@"
        eval "${name}_off+=(\"$RPS\")"
        local line="run $run: without $RPS req/s"
        tapline_start --pid "$WORKER_PID"
        wrk_run "$@"
        tapline_stop
        eval "${name}_pid+=(\"$RPS\")"
        eval "${name}_cov_pid+=(\"$(ratio "$TL_PAIRS" "$REQUESTS")\")"
        lost=$((lost + TL_LOST))
        line+=", --pid $RPS req/s ($TL_PAIRS pairs of $REQUESTS requests, $TL_CHUNKS chunks)"
        tapline_start --tls
        wrk_run "$@"
        tapline_stop
        eval "${name}_all+=(\"$RPS\")"
        eval "${name}_cov_all+=(\"$(ratio "$TL_PAIRS" "$REQUESTS")\")"
        lost=$((lost + TL_LOST))
        line+=", --tls $RPS req/s ($TL_PAIRS pairs of $REQUESTS requests, $TL_CHUNKS chunks)"
        log "  $line"
    done
    eval "${name}_lost=$lost"
}

# ---------------------------------------------------------------- report
# row NAME LABEL: a table row for a workload.
row() {
    local name=$1 label=$2 off pid all cov_pid cov_all
    off=$(eval "printf '%s\n' \"\${${name}_off[@]}\"" | median)
    pid=$(eval "printf '%s\n' \"\${${name}_pid[@]}\"" | median)
    all=$(eval "printf '%s\n' \"\${${name}_all[@]}\"" | median)
    cov_pid=$(eval "printf '%s\n' \"\${${name}_cov_pid[@]}\"" | median)
    cov_all=$(eval "printf '%s\n' \"\${${name}_cov_all[@]}\"" | median)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$off" "$pid" "$(ratio "$pid" "$off")" \
        "$cov_pid" "$all" "$(ratio "$all" "$off")" "$cov_all"
}

# runs NAME: the runs of a workload, without / --pid / --tls.
runs() {
    local name=$1
    paste -d/ <(eval "printf '%s\n' \"\${${name}_off[@]}\"") <(eval "printf '%s\n' \"\${${name}_pid[@]}\"") \
        <(eval "printf '%s\n' \"\${${name}_all[@]}\"") | tr '\n' ' '
}

# aim NAME LABEL: table rows of the aim for a workload's two capture modes.
aim() {
    local name=$1 label=$2 off mode med r shown
    off=$(eval "printf '%s\n' \"\${${name}_off[@]}\"" | median)
    for mode in pid all; do
        med=$(eval "printf '%s\n' \"\${${name}_${mode}[@]}\"" | median)
        r=$(ratio "$med" "$off")
        if [[ $mode == pid ]]; then shown="\`--pid\` worker"; else shown="\`--tls\`"; fi
        printf '| %s, %s: ≥ 0.90× without capture | %s× | %s |\n' "$label" "$shown" "$r" \
            "$(awk -v r="$r" 'BEGIN { print (r >= 0.90 ? "yes" : "**no**") }')"
    done
}

report() {
    cat <<EOF
<!-- bench/tls.sh: begin -->
## TLS plaintext capture: cost to a TLS service

- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%d GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: other work slows every configuration alike only roughly)
- tapline: \`$("$TAPLINE" --version)\`; nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') with $(openssl version | awk '{ print $1, $2 }'), wrk $(wrk -v 2>&1 | head -1 | awk '{ print $2 }') (links the same libssl)
- Command (as root, from the repo root): \`$COMMAND\`
- Setup: two network namespaces joined by a veth; nginx with TLS (1 worker, self-signed P-256 certificate, TLS 1.3) serving a 1 KiB file; \`wrk -t1 -c$CONNECTIONS -d${WRK_SECONDS}s https://…/small\` from the other namespace, keep-alive or with \`-H 'Connection: close'\` (a new TCP connection and full handshake per request). Each run: without capture, then \`tapline capture --pid <worker>\` (uprobes on libssl, kept in the kernel only for the worker), then \`tapline capture --tls\` (every process: wrk's calls are copied too, and the pipeline drops the second view of each connection); $RUNS runs alternating, medians. "pairs/requests" is the RRPairs in the snapshot over the requests wrk completed: 1.000 when each exchange came out once (wrk's last requests, cut off at the end, can add a few pairs flagged incomplete); clearly above 1 means exchanges split or duplicated by the pipeline.

| workload | without, req/s | \`--pid\` worker, req/s | × without | pairs/requests | \`--tls\`, req/s | × without | pairs/requests |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
$(row ka "keep-alive")
$(row close "new connection per request")

Runs (without / --pid / --tls): keep-alive $(runs ka); new connections $(runs close)

TLS plaintext bytes the programs could not copy, all runs: keep-alive $ka_lost, new connections $close_lost.

| aim (issue) | measured | met |
| --- | ---: | --- |
$(aim ka "keep-alive")
$(aim close "new connections")
<!-- bench/tls.sh: end -->
EOF
}

write_results() {
    local section=$1
    [[ -f $RESULTS ]] || printf '# tapline benchmark results\n\nEach section is written by the script it names; rerun the command it shows to refresh it.\n' >"$RESULTS"
    if grep -q '<!-- bench/tls.sh: begin -->' "$RESULTS"; then
        awk -v file="$section" '
            /<!-- bench\/tls.sh: begin -->/ { while ((getline line < file) > 0) print line; skip = 1; next }
            /<!-- bench\/tls.sh: end -->/ { skip = 0; next }
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
    log "keep-alive: wrk -t1 -c$CONNECTIONS -d${WRK_SECONDS}s, without / --pid / --tls, $RUNS runs"
    measure ka
    log "new connections: the same with -H 'Connection: close', $RUNS runs"
    measure close -H "Connection: close"
    report >"$WORK/section.md"
    cat "$WORK/section.md"
    if [[ $WRITE_RESULTS == 1 ]]; then write_results "$WORK/section.md"; fi
}

main "$@"
