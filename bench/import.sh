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

# ---------------------------------------------------------------- profile
# Writes the "What limits us" markdown to $WORK/profile.md.
profile() {
    local pcap=$DATA/small.pcap snap=$DATA/snap-profile out=$WORK/profile.md
    rm -rf "$snap"
    if perf record -q -o "$WORK/probe.data" -- true >/dev/null 2>&1; then
        log "profile: perf record -g of tapline import small.pcap --workers 1"
        perf record -g -q -o "$DATA/perf.data" -- "$TAPLINE" import "$pcap" --out "$snap" --workers 1 \
            >/dev/null 2>"$WORK/perf.err" || { cat "$WORK/perf.err" >&2; fail "perf record failed"; return; }
        {
            echo "Command: \`perf record -g -- tapline import small.pcap --out SNAP --workers 1\` then"
            echo "\`perf report --no-children --sort dso,symbol -g none\` (self time; event $(perf evlist -i "$DATA/perf.data" 2>/dev/null | awk 'NR == 1'))."
            echo
            echo "| self % | object | function |"
            echo "| ---: | --- | --- |"
            perf report -i "$DATA/perf.data" --no-children --sort dso,symbol -g none --stdio 2>/dev/null |
                awk '/^ +[0-9.]+%/ {
                    pct = $1; dso = $2; sym = ""
                    for (i = 4; i <= NF; i++) sym = sym (i > 4 ? " " : "") $i
                    gsub(/\|/, "\\|", sym); if (length(sym) > 140) sym = substr(sym, 1, 137) "..."
                    sub(/( -)+$/, "", sym)
                    if (++n <= 25) printf "| %s | %s | `%s` |\n", pct, dso, sym }'
            echo
            echo "By thread (self %):"
            echo
            echo "| self % | thread |"
            echo "| ---: | --- |"
            perf report -i "$DATA/perf.data" --no-children --sort comm -g none --stdio 2>/dev/null |
                awk '/^ +[0-9.]+%/ { if (++n <= 10) printf "| %s | %s |\n", $1, $2 }'
        } >"$out"
    else
        log "profile: perf not usable here; valgrind --tool=callgrind on the first 100000 packets"
        command -v valgrind >/dev/null || apt-get install -y -qq valgrind >&2
        tcpdump -r "$pcap" -c 100000 -w "$WORK/sub.pcap" 2>/dev/null
        valgrind --tool=callgrind --callgrind-out-file="$DATA/callgrind.out" \
            "$TAPLINE" import "$WORK/sub.pcap" --out "$snap" --workers 1 >/dev/null 2>"$WORK/perf.err" ||
            { fail "valgrind failed"; return; }
        {
            echo "Command: \`valgrind --tool=callgrind tapline import small-100k.pcap --out SNAP --workers 1\`"
            echo "(perf is not usable on this machine); instructions, self."
            echo
            echo "| self % | function |"
            echo "| ---: | --- |"
            callgrind_annotate --inclusive=no "$DATA/callgrind.out" 2>/dev/null |
                awk '/^ *[0-9,]+ \( *[0-9.]+%\)/ {
                    match($0, /\( *[0-9.]+%\)/); pct = substr($0, RSTART + 1, RLENGTH - 2); gsub(/ /, "", pct)
                    sym = substr($0, RSTART + RLENGTH); sub(/^ +/, "", sym)
                    gsub(/\|/, "\\|", sym); if (length(sym) > 140) sym = substr(sym, 1, 137) "..."
                    if (++n <= 25) printf "| %s | `%s` |\n", pct, sym }'
        } >"$out"
    fi
    rm -rf "$snap"
}

# ---------------------------------------------------------------- report
report() {
    local rows=$WORK/rows name tool
    : >"$rows"
    for name in small large; do
        for tool in tshark w1 w2; do
            local f=$WORK/times.$name-$tool
            awk '{print $1, $2 + $3, $4}' "$f" >"$f.cpu"
            echo "$name $tool $(median "$f.cpu" 1) $(median "$f.cpu" 2) $(median "$f.cpu" 3)" \
                "$(meta "$name" bytes) $(meta "$name" packets) $(meta "$name" completed)" >>"$rows"
        done
    done
    local md=$WORK/report.md date machine rev
    date=$(date -u '+%Y-%m-%d %H:%M UTC')
    machine="$(nproc) cores ($(lscpu | awk -F': *' '/^Model name/ {print $2}')), $(free -g | awk '/^Mem:/ {print $2}') GiB, Linux $(uname -r)"
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [[ -z $(git -C "$ROOT" status --porcelain 2>/dev/null) ]] || rev="$rev (with uncommitted changes)"
    {
        echo "## Import: tapline vs tshark"
        echo
        echo "- Date: $date"
        echo "- Machine: $machine; load average (1, 5, 15 min) $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (other work on the machine, if any, slows every tool alike only roughly)"
        echo "- tapline: $rev, \`$("$TAPLINE" --version 2>/dev/null)\`; peer: $(tshark --version | awk 'NR == 1 {print $1, $3}')"
        echo "- Command (as root, from the repo root): \`$COMMAND\`"
        echo "- Traffic: nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (1 worker, access_log off) in one network namespace, \`loadgen\` ($CONNS keep-alive connections, no pipelining) in another, joined by a veth with MTU 1500 and TSO/GSO/GRO/checksum offloads off; \`tcpdump -s 0\` on the client side."
        echo "- Peer: \`tshark -n -r F -q -z http,tree\`; tapline: \`tapline import F --out SNAP --workers N\` (snapshot removed and \`sync\` before each run). Each figure is the median of $RUNS runs; the pcap is in the page cache. MB = 10^6 bytes of pcap file; \"MB per CPU-s\" divides by user+system time."
        echo
        echo "| capture | requests completed | pcap MB | packets | avg packet B | tcpdump drops |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: |"
        for name in small large; do
            awk -v n="$name" -v c="$(meta "$name" completed)" -v b="$(meta "$name" bytes)" \
                -v p="$(meta "$name" packets)" -v d="$(meta "$name" dropped)" -v path="$(meta "$name" path)" \
                'BEGIN {printf "| %s (GET %s) | %d | %.1f | %d | %.0f | %d |\n", n, path, c, b / 1e6, p, (b - 24 - 16 * p) / p, d}'
        done
        echo
        echo "| capture | tool | time s | MB/s | packets/s | pairs/s | MB per CPU-s | max RSS MiB | × tshark |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        awk '{ key = $1; if ($2 == "tshark") base[key] = $3; rows[NR] = $0 }
            END { for (i = 1; i <= NR; i++) {
                split(rows[i], f, " ")
                tool = f[2] == "tshark" ? "tshark" : "tapline --workers " substr(f[2], 2)
                printf "| %s | %s | %.3f | %.1f | %.0f | %.0f | %.1f | %.0f | %.1f× |\n", f[1], tool, f[3],
                    f[6] / 1e6 / f[3], f[7] / f[3], f[8] / f[3], f[6] / 1e6 / (f[4] > 0 ? f[4] : 0.01), f[5] / 1024, base[f[1]] / f[3] } }' "$rows"
        echo
        echo "Aims (issue): tapline ≥ 20× tshark's pairs/s on small, ≥ 10× tshark's MB/s on large, ≥ 1 GB/s per core."
        echo
        echo "| aim | measured | met |"
        echo "| --- | ---: | --- |"
        awk '{ t[$1 "-" $2] = $3; cpu[$1 "-" $2] = $4; bytes[$1] = $6 }
            function best(n) { return t[n "-w1"] < t[n "-w2"] ? t[n "-w1"] : t[n "-w2"] }
            function who(n) { return t[n "-w1"] < t[n "-w2"] ? "--workers 1" : "--workers 2" }
            function yes(c) { return c ? "yes" : "**no**" }
            END {
                r = t["small-tshark"] / best("small")
                printf "| small: pairs/s ≥ 20× tshark | %.1f× (%s) | %s |\n", r, who("small"), yes(r >= 20)
                r = t["large-tshark"] / best("large")
                printf "| large: MB/s ≥ 10× tshark | %.1f× (%s) | %s |\n", r, who("large"), yes(r >= 10)
                for (k = 0; k < 2; k++) { n = k ? "large" : "small"
                    c = cpu[n "-w1"] > 0 ? cpu[n "-w1"] : 0.01; r = bytes[n] / 1e6 / c
                    printf "| %s: ≥ 1000 MB per CPU-second (--workers 1, user+sys) | %.0f MB/CPU-s | %s |\n", n, r, yes(r >= 1000) }
            }' "$rows"
        echo
        echo "Checks: pairs in the snapshot (\`manifest.json\` counts.rrpairs) against requests the load generator completed:"
        echo
        for name in small large; do
            echo "- $name: loadgen completed $(meta "$name" completed); $(tr '\n' ';' <"$WORK/check.$name" | sed 's/;$//; s/;/; /g')"
        done
        ((FAILS == 0)) && echo "- All checks passed." || echo "- **$FAILS check(s) FAILED** (see the FAIL lines of the run)."
        if [[ -s $WORK/profile.md ]]; then
            echo
            echo "### What limits us"
            echo
            echo "Profile of \`tapline import\` on the small capture, \`--workers 1\`."
            echo
            cat "$WORK/profile.md"
        fi
    } >"$md"
    echo
    cat "$md"
    if [[ $WRITE_RESULTS == 1 ]]; then
        write_results "$md"
        log "wrote $RESULTS"
    else
        log "not writing $RESULTS (not the default sizes; BENCH_WRITE_RESULTS=1 forces it)"
    fi
}

# Replaces this script's section of RESULTS.md (between its markers), or appends it.
write_results() {
    local md=$1 begin='<!-- bench/import.sh: begin -->' end='<!-- bench/import.sh: end -->'
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
