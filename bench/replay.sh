#!/usr/bin/env bash
# bench/replay.sh: `tapline replay --rate max` side by side with `wrk` on the same nginx, and the
# rate accuracy of `--rate N%` (open loop).
#
# Run as root from anywhere:  sudo bench/replay.sh
# It installs what it lacks (nginx-light, wrk, tcpdump, iproute2, jq, python3, util-linux),
# builds tapline (release), starts one nginx worker in a fresh network namespace, records a
# Python client's keep-alive GETs of /api/items/K (JSON bodies of ~100 B) with tcpdump on the
# namespace's loopback and imports them. Then, with nginx pinned to CPU 0 and the load
# generator to CPU 1:
#   throughput: `wrk -t1 -cN` against one URL and `tapline replay --rate max --connections N
#               --duration D` of the snapshot (every response diffed against the recorded one),
#               median of BENCH_RUNS runs each, and the ratio;
#   accuracy:   `tapline replay --rate R` for each R in BENCH_RATES, looping for BENCH_DURATION:
#               asked and achieved req/s, the error, and p99 of the replay latency.
# It prints a markdown table and writes it into bench/RESULTS.md (its own section).
#
# Settings (environment):
#   BENCH_CONNECTIONS   connections of wrk and tapline --rate max  (default 8)
#   BENCH_DURATION      length of each timed run, whole seconds    (default 10s)
#   BENCH_RUNS          timed runs of each tool, median            (default 3)
#   BENCH_RATES         rates of the accuracy runs                 (default "1000% 2000% 5000%")
#   BENCH_RECORD        requests recorded (1 ms apart, 8 conns)    (default 2000)
#   BENCH_WRITE_RESULTS 1: write bench/RESULTS.md                  (default 1)
#   BENCH_SKIP_BUILD=1  use the tapline binary as it is
#   TAPLINE             tapline binary                             (default target/release/tapline)
# Quick check:  BENCH_DURATION=3s BENCH_RUNS=1 BENCH_WRITE_RESULTS=0 bench/replay.sh
#
# Traffic stays on the loopback of the namespace this script makes; it is removed on exit.
# Exit: 0 all checks passed, 1 a check failed (FAIL lines say which), 2 usage, 3 environment.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
CONNS=${BENCH_CONNECTIONS:-8}
DURATION=${BENCH_DURATION:-10s}
RUNS=${BENCH_RUNS:-3}
RATES=${BENCH_RATES:-"1000% 2000% 5000%"}
RECORD=${BENCH_RECORD:-2000}
WRITE_RESULTS=${BENCH_WRITE_RESULTS:-1}
TAPLINE=${TAPLINE:-$ROOT/target/release/tapline}
RESULTS=$BENCH_DIR/RESULTS.md
COMMAND="BENCH_CONNECTIONS=$CONNS BENCH_DURATION=$DURATION BENCH_RUNS=$RUNS BENCH_RATES=\"$RATES\" bench/replay.sh"
NS=tlbench-replay-$$
PORT=8080
WORK=""
NGINX_PID=""
TCPDUMP_PID=""
FAILS=0

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'replay.sh: %s\n' "$2" >&2; exit "$1"; }
fail() { printf 'FAIL: %s\n' "$*"; FAILS=$((FAILS + 1)); }

for v in CONNS RUNS RECORD; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die 2 "$v must be a positive integer, got '${!v}'"
done
[[ $DURATION =~ ^[0-9]+s$ ]] || die 2 "BENCH_DURATION must be whole seconds such as 10s, got '$DURATION'"

cleanup() {
    local rc=$?
    [[ -n $TCPDUMP_PID ]] && kill "$TCPDUMP_PID" 2>/dev/null && wait "$TCPDUMP_PID" 2>/dev/null
    [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null || true
    [[ -n $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_tools() {
    [[ $(id -u) -eq 0 ]] || die 3 "run as root (network namespace, tcpdump): sudo $0"
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v tcpdump >/dev/null || missing+=(tcpdump)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v jq >/dev/null || missing+=(jq)
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v python3 >/dev/null || missing+=(python3)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 || die 3 "apt-get update failed; install ${missing[*]} by hand"
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
            die 3 "could not install ${missing[*]}"
    fi
    (($(nproc) >= 2)) || die 3 "needs 2 CPUs (nginx on CPU 0, the load generator on CPU 1)"
    if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
        command -v cargo >/dev/null || die 3 "cargo not found (or set BENCH_SKIP_BUILD=1)"
        log "building tapline (release)"
        (cd "$ROOT" && cargo build --release -p tapline >&2) || die 3 "cargo build --release -p tapline failed"
    fi
    [[ -x $TAPLINE ]] || die 3 "no tapline binary at $TAPLINE"
}

start_nginx() {
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    mkdir -p "$WORK/tmp"
    chmod 755 "$WORK"
    cat >"$WORK/nginx.conf" <<NGINX_CONF
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
        listen 127.0.0.1:$PORT backlog=4096;
        location /api/items/ {
            default_type application/json;
            return 200 '{"item":"\$uri","price":42,"currency":"EUR","stock":7,"tags":["bench","replay"]}';
        }
    }
}
NGINX_CONF
    ip netns exec "$NS" taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/error.log" &
    NGINX_PID=$!
    local _
    for _ in $(seq 50); do
        if ip netns exec "$NS" bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then
            log "nginx up on CPU 0 (pid $NGINX_PID)"
            return
        fi
        sleep 0.1
    done
    cat "$WORK/error.log" >&2 || true
    die 3 "nginx did not start listening on 127.0.0.1:$PORT"
}

# Waits until FILE has not grown for 1.5 s (tcpdump writes in blocks).
settle() {
    local file=$1 last=-1 same=0 size _
    for _ in $(seq 200); do
        size=$(stat -c %s "$file" 2>/dev/null || echo 0)
        if [[ $size == "$last" ]]; then same=$((same + 1)); else same=0; last=$size; fi
        ((same >= 15)) && return
        sleep 0.1
    done
}

record() {
    local pcap=$WORK/items.pcap _
    log "recording $RECORD GETs, 1 ms apart over 8 connections"
    ip netns exec "$NS" tcpdump -i lo -s 0 -U -n -Z root -w "$pcap" tcp port "$PORT" 2>"$WORK/tcpdump.log" &
    TCPDUMP_PID=$!
    for _ in $(seq 100); do grep -q "listening on" "$WORK/tcpdump.log" && break; sleep 0.1; done
    ip netns exec "$NS" python3 "$ROOT/tests/scripts/replay_client.py" --port "$PORT" --mix items \
        --count "$RECORD" --gap-ms 1 --connections 8 >"$WORK/client.jsonl"
    settle "$pcap"
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" 2>/dev/null || true
    TCPDUMP_PID=""
    "$TAPLINE" import "$pcap" --out "$WORK/snap" -q
    local pairs
    pairs=$("$TAPLINE" inspect "$WORK/snap" --format jsonl | wc -l)
    [[ $pairs == "$RECORD" ]] || fail "recorded $pairs pairs, expected $RECORD"
    log "snapshot: $pairs pairs"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

run_wrk() {
    ip netns exec "$NS" taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$PORT/api/items/1" |
        awk '/^Requests\/sec:/ {print $2}'
}

# run_tapline RATE: runs a replay for BENCH_DURATION and prints the path of its report.json.
run_tapline() {
    local rate=$1 dir
    dir=$(mktemp -d "$WORK/replay.XXXX")
    local args=(replay "$WORK/snap" --target "http://127.0.0.1:$PORT" --rate "$rate" --duration "$DURATION"
        --report "$dir" --quiet)
    [[ $rate == max ]] && args+=(--connections "$CONNS")
    ip netns exec "$NS" taskset -c 1 "$TAPLINE" "${args[@]}" >"$dir/stdout" 2>"$dir/stderr" || true
    [[ -s $dir/report.json ]] || die 3 "tapline replay wrote no report: $(cat "$dir/stderr")"
    echo "$dir/report.json"
}

main() {
    ensure_tools
    WORK=$(mktemp -d /tmp/tapline-bench-replay.XXXXXX)
    local load_start
    load_start=$(cut -d' ' -f1-3 /proc/loadavg)
    start_nginx
    record

    log "throughput: $RUNS runs of $DURATION each, $CONNS connections"
    local wrk_all=() tl_all=() i report mismatched errors
    for i in $(seq "$RUNS"); do
        wrk_all+=("$(run_wrk)")
        report=$(run_tapline max)
        tl_all+=("$(jq -r .rate.achieved_rps "$report")")
        mismatched=$(jq -r .mismatched "$report")
        errors=$(jq -r .errors "$report")
        [[ $mismatched == 0 && $errors == 0 ]] || fail "replay run $i: $mismatched mismatched, $errors errors"
        log "run $i: wrk ${wrk_all[-1]} req/s, tapline ${tl_all[-1]} req/s ($(jq -r .total "$report") responses diffed)"
    done
    local wrk_med tl_med ratio p99
    wrk_med=$(printf '%s\n' "${wrk_all[@]}" | median)
    tl_med=$(printf '%s\n' "${tl_all[@]}" | median)
    ratio=$(awk -v a="$tl_med" -v b="$wrk_med" 'BEGIN {printf "%.2f", a / b}')
    p99=$(jq -r .latency.replay.p99_ms "$report")

    log "accuracy: $RATES"
    local rows="" rate asked achieved err lat
    for rate in $RATES; do
        report=$(run_tapline "$rate")
        asked=$(jq -r .rate.asked_rps "$report")
        achieved=$(jq -r .rate.achieved_rps "$report")
        err=$(awk -v a="$achieved" -v b="$asked" 'BEGIN {printf "%+.2f", (a / b - 1) * 100}')
        lat=$(jq -r .latency.replay.p99_ms "$report")
        mismatched=$(jq -r .mismatched "$report")
        rows+="| \`--rate $rate\` | $(printf %.0f "$asked") | $(printf %.0f "$achieved") | $err % | $lat ms | $mismatched |"$'\n'
        log "rate $rate: asked $asked, achieved $achieved ($err %), p99 $lat ms"
    done

    local md=$WORK/results.md
    {
        echo "## Replay: \`tapline replay\` against \`wrk\`, and rate accuracy"
        echo
        echo "Command: \`sudo $COMMAND\` ($(date -u +%Y-%m-%d), $(nproc) CPUs, load before: $load_start)."
        echo "One nginx worker pinned to CPU 0 serves JSON bodies of ~100 B on a namespace's loopback;"
        echo "the load generator runs pinned to CPU 1. The snapshot is $RECORD GETs of \`/api/items/K\`"
        echo "recorded from a Python client 1 ms apart on 8 keep-alive connections."
        echo "\`tapline replay\` loops it for $DURATION and diffs every response against the recorded one"
        echo "(Date ignored); \`wrk\` sends one URL and checks nothing. Median of $RUNS runs."
        echo
        echo "| tool | connections | req/s | ratio |"
        echo "|---|---:|---:|---:|"
        echo "| \`wrk -t1 -c$CONNS\` | $CONNS | $(printf %.0f "$wrk_med") | 1.00 |"
        echo "| \`tapline replay --rate max --connections $CONNS\` | $CONNS | $(printf %.0f "$tl_med") | $ratio |"
        echo
        echo "Runs: wrk ${wrk_all[*]}; tapline ${tl_all[*]}. Replay latency p99 at max: $p99 ms."
        echo
        echo "Open-loop rate accuracy (the recording's pace times the rate, looped for $DURATION;"
        echo "latency measured from each request's intended send time):"
        echo
        echo "| rate | asked req/s | achieved req/s | error | p99 | mismatched |"
        echo "|---|---:|---:|---:|---:|---:|"
        printf '%s' "$rows"
    } >"$md"
    echo
    cat "$md"
    if [[ $WRITE_RESULTS == 1 ]]; then
        write_results "$md"
        log "wrote $RESULTS"
    fi
    ((FAILS == 0)) || exit 1
}

# Replaces this script's section of RESULTS.md (between its markers), or appends it.
write_results() {
    local md=$1 begin='<!-- bench/replay.sh: begin -->' end='<!-- bench/replay.sh: end -->'
    [[ -f $RESULTS ]] || printf '# tapline benchmark results\n\nEach section is written by the script it names; rerun the command it shows to refresh it.\n' >"$RESULTS"
    local new=$WORK/RESULTS.new
    if grep -qF "$begin" "$RESULTS"; then
        awk -v b="$begin" -v e="$end" -v f="$md" '
            $0 == b { print; while ((getline l < f) > 0) print l; skip = 1; next }
            $0 == e { skip = 0 }
            !skip' "$RESULTS" >"$new"
    else
        { cat "$RESULTS"; echo; echo "$begin"; cat "$md"; echo "$end"; } >"$new"
    fi
    mv "$new" "$RESULTS"
}

main "$@"
