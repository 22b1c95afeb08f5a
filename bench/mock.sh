#!/usr/bin/env bash
# bench/mock.sh: `tapline mock` throughput side by side with nginx serving the same bodies, both
# measured with wrk in one run.
#
# Run as root from anywhere:  sudo bench/mock.sh
# It installs what it lacks (nginx-light, wrk, tcpdump, curl, iproute2, util-linux for taskset),
# builds tapline (release), then inside a network namespace of its own (loopback only):
#   1. starts nginx (1 worker) answering GET /small (a ~100 B JSON body, `return 200`) and
#      GET /large (a 16 KiB static file, sendfile and open_file_cache on);
#   2. records a few requests to it with tcpdump and imports them: a snapshot of nginx's answers;
#   3. starts `tapline mock` on that snapshot (1 worker thread) and checks with curl that it
#      answers both paths with nginx's bodies, byte for byte;
#   4. runs wrk against nginx and against the mock in turns (server pinned to one core, wrk to
#      the other), BENCH_RUNS times each, and takes the median requests/s;
# then prints a markdown table with the ratio mock/nginx and writes it into bench/RESULTS.md.
#
# Settings (environment):
#   BENCH_DURATION      seconds of each wrk run                 (default 10)
#   BENCH_CONNECTIONS   wrk connections                         (default 64)
#   BENCH_RUNS          runs per target and body, median        (default 3)
#   BENCH_PROFILE=0     skip the perf profile of the mock
#   BENCH_WRITE_RESULTS 1: write bench/RESULTS.md (default: 1 at the default settings)
#   BENCH_SKIP_BUILD=1  use target/release/tapline as it is
#   TAPLINE             tapline binary                          (default target/release/tapline)
# Quick check:  BENCH_DURATION=2 BENCH_RUNS=1 bench/mock.sh
#
# Traffic stays on the loopback of the namespace this script makes; it is removed on exit.
# Exit: 0 all checks passed, 1 a check failed (FAIL lines say which), 2 usage, 3 environment.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-64}
RUNS=${BENCH_RUNS:-3}
PROFILE=${BENCH_PROFILE:-1}
if [[ $DURATION == 10 && $CONNS == 64 && $RUNS -ge 3 ]]; then
    WRITE_RESULTS=${BENCH_WRITE_RESULTS:-1}
else
    WRITE_RESULTS=${BENCH_WRITE_RESULTS:-0}
fi
TAPLINE=${TAPLINE:-$ROOT/target/release/tapline}
RESULTS=$BENCH_DIR/RESULTS.md
COMMAND="BENCH_DURATION=$DURATION BENCH_CONNECTIONS=$CONNS BENCH_RUNS=$RUNS bench/mock.sh"
NS=tlbench-mock-$$
NGINX_PORT=18180
MOCK_PORT=18190
WORK=""
NGINX_PID=""
MOCK_PID=""
FAILS=0

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'mock.sh: %s\n' "$2" >&2; exit "$1"; }
fail() { printf 'FAIL: %s\n' "$*"; FAILS=$((FAILS + 1)); }

for v in DURATION CONNS RUNS; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die 2 "$v must be a positive integer, got '${!v}'"
done

cleanup() {
    local rc=$?
    [[ -n $MOCK_PID ]] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null
    [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null || true
    [[ -n $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { ip netns exec "$NS" "$@"; }

ensure_tools() {
    [[ $(id -u) -eq 0 ]] || die 3 "run as root (network namespace, tcpdump): sudo $0"
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v tcpdump >/dev/null || missing+=(tcpdump)
    command -v curl >/dev/null || missing+=(curl)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v taskset >/dev/null || missing+=(util-linux)
    if [[ $PROFILE == 1 ]] && ! command -v perf >/dev/null; then missing+=(linux-perf); fi
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 || die 3 "apt-get update failed; install ${missing[*]} by hand"
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
            die 3 "could not install ${missing[*]}"
    fi
    if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
        command -v cargo >/dev/null || die 3 "cargo not found (or set BENCH_SKIP_BUILD=1 with a built binary)"
        log "building tapline (release)"
        (cd "$ROOT" && cargo build --release -p tapline >&2) || die 3 "cargo build --release -p tapline failed"
    fi
    [[ -x $TAPLINE ]] || die 3 "no tapline binary at $TAPLINE"
}

# wait_port PORT: until something accepts connections on 127.0.0.1:PORT in the namespace.
wait_port() {
    local _
    for _ in $(seq 100); do
        in_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

start_nginx() {
    mkdir -p "$WORK/tmp" "$WORK/www"
    local small
    small='{"id":"42","name":"tapline bench user","email":"user42@example.com","roles":["reader","writer"]}'
    # 16 KiB of printable bytes (too long for a `return` string in nginx.conf: a file).
    head -c 12288 /dev/urandom | base64 -w 0 | head -c 16384 >"$WORK/www/large"
    chmod 644 "$WORK/www/large"
    cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
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
    sendfile on;
    tcp_nopush on;
    open_file_cache max=16 inactive=600s;
    open_file_cache_valid 600s;
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location = /small { default_type application/json; return 200 '$small'; }
        location = /large { root $WORK/www; default_type application/octet-stream; etag off; }
    }
}
EOF
    # `ip netns exec` execs the program in place, so $! is the program's pid (a shell function
    # run with & would be a subshell that ignores the signals sent to it).
    ip netns exec "$NS" taskset -c 1 nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/error.log" &
    NGINX_PID=$!
    wait_port "$NGINX_PORT" || { cat "$WORK/error.log" >&2; die 3 "nginx did not listen on 127.0.0.1:$NGINX_PORT"; }
    log "nginx up (pid $NGINX_PID, 1 worker, pinned to CPU 1)"
}

# Records a few requests to nginx with tcpdump and imports them into $WORK/snap.
record() {
    local pcap=$WORK/nginx.pcap size=-1 quiet=0
    ip netns exec "$NS" tcpdump -i lo -s 0 -U -n -Z root -w "$pcap" "tcp port $NGINX_PORT" 2>"$WORK/tcpdump.err" &
    local tcpdump_pid=$!
    local _
    for _ in $(seq 100); do
        grep -q 'listening on' "$WORK/tcpdump.err" 2>/dev/null && break
        sleep 0.05
    done
    local url=http://127.0.0.1:$NGINX_PORT
    in_ns curl -s -o /dev/null "$url/small" "$url/large" "$url/small" "$url/large"
    in_ns curl -s -o "$WORK/nginx.small" "$url/small"
    in_ns curl -s -o "$WORK/nginx.large" "$url/large"
    # tcpdump writes its last block up to a second after the last packet: wait until the file
    # has not grown for 1.5 s.
    while ((quiet < 15)); do
        sleep 0.1
        local now
        now=$(stat -c %s "$pcap" 2>/dev/null || echo 0)
        if [[ $now == "$size" ]]; then quiet=$((quiet + 1)); else size=$now; quiet=0; fi
    done
    kill -INT "$tcpdump_pid"
    wait "$tcpdump_pid" || true
    "$TAPLINE" import "$pcap" --out "$WORK/snap" >&2 || die 1 "tapline import of the nginx capture failed"
    local pairs
    pairs=$("$TAPLINE" inspect "$WORK/snap" --format jsonl | wc -l)
    [[ $pairs == 6 ]] || fail "the capture of 6 requests to nginx gave $pairs pairs"
}

start_mock() {
    ip netns exec "$NS" taskset -c 1 "$TAPLINE" mock "$WORK/snap" --listen "127.0.0.1:$MOCK_PORT" --threads 1 \
        >"$WORK/mock.out" 2>"$WORK/mock.err" &
    MOCK_PID=$!
    wait_port "$MOCK_PORT" || { cat "$WORK/mock.out" "$WORK/mock.err" >&2; die 1 "tapline mock did not listen"; }
    log "tapline mock up (pid $MOCK_PID, --threads 1, pinned to CPU 1)"
    local path
    for path in small large; do
        in_ns curl -s -o "$WORK/mock.$path" "http://127.0.0.1:$MOCK_PORT/$path"
        cmp -s "$WORK/mock.$path" "$WORK/nginx.$path" ||
            fail "tapline mock's /$path body differs from nginx's"
    done
}

# bench TARGET PORT PATH: one wrk run; appends "req_per_s mb_per_s p50_ms p99_ms errors
# server_cpu_us_per_request" to $WORK/wrk.TARGET.PATH.
bench() {
    local target=$1 port=$2 path=$3 out=$WORK/wrk.out pid cpu0 cpu1
    [[ $target == nginx ]] && pid=$NGINX_PID || pid=$MOCK_PID
    cpu0=$(cpu_ticks "$pid")
    in_ns taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/$path" >"$out" 2>&1 ||
        { cat "$out" >&2; die 1 "wrk against $target failed"; }
    cpu1=$(cpu_ticks "$pid")
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        function mb(v) { if (v ~ /GB$/) return v * 1024; if (v ~ /MB$/) return v + 0; if (v ~ /KB$/) return v / 1024; return v / 1048576 }
        /Requests\/sec:/ { rps = $2 }
        /Transfer\/sec:/ { tps = mb($2) }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { bad += $NF }
        /Socket errors:/ { for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) bad += $i + 0 }
        /requests in/ { total = $1 }
        END { printf "%s %.2f %.3f %.3f %d %.2f\n", rps, tps, p50, p99, bad, (total > 0 ? ticks * 1e6 / hz / total : 0) }' \
        ticks=$((cpu1 - cpu0)) hz="$(getconf CLK_TCK)" "$out" >>"$WORK/wrk.$target.$path"
    local errors
    errors=$(tail -1 "$WORK/wrk.$target.$path" | awk '{print $5}')
    ((errors == 0)) || fail "$target /$path: wrk saw $errors errors or non-2xx answers"
}

# Profiles the mock (perf record -g) while wrk asks it for /large and /small; writes the
# "What limits us" markdown to $WORK/profile.md.
profile() {
    if ! perf record -q -o "$WORK/probe.data" -- true >/dev/null 2>&1; then
        log "profile: perf is not usable here; skipped"
        return
    fi
    local path
    for path in large small; do
        log "profile: perf record -g -p $MOCK_PID during wrk /$path"
        perf record -g -q -o "$WORK/perf.$path.data" -p "$MOCK_PID" -- sleep "$DURATION" >/dev/null 2>&1 &
        local perf_pid=$!
        ip netns exec "$NS" taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$MOCK_PORT/$path" >/dev/null 2>&1 || true
        wait "$perf_pid" || true
    done
    {
        for path in large small; do
            echo "Profile of \`tapline mock\` under \`wrk /$path\`: \`perf record -g -p PID\`, then \`perf report --no-children --sort dso,symbol -g none\` (self time, top 15)."
            echo
            echo "| self % | object | function |"
            echo "| ---: | --- | --- |"
            perf report -i "$WORK/perf.$path.data" --no-children --sort dso,symbol -g none --stdio 2>/dev/null |
                awk '/^ +[0-9.]+%/ {
                    sym = ""
                    for (i = 4; i <= NF; i++) sym = sym (i > 4 ? " " : "") $i
                    sub(/( -)+$/, "", sym); gsub(/\|/, "\\|", sym)
                    if (length(sym) > 120) sym = substr(sym, 1, 117) "..."
                    if (++n <= 15) printf "| %s | %s | `%s` |\n", $1, $2, sym }'
            echo
        done
    } >"$WORK/profile.md"
}

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

report() {
    local md=$WORK/report.md date machine rev path
    date=$(date -u '+%Y-%m-%d %H:%M UTC')
    machine="$(nproc) cores ($(lscpu | awk -F': *' '/^Model name/ {print $2}')), $(free -g | awk '/^Mem:/ {print $2}') GiB, Linux $(uname -r)"
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [[ -z $(git -C "$ROOT" status --porcelain 2>/dev/null) ]] || rev="$rev (with uncommitted changes)"
    {
        echo "## Mock: tapline mock vs nginx"
        echo
        echo "- Date: $date"
        echo "- Machine: $machine; load average (1, 5, 15 min) $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
        echo "- tapline: \`$("$TAPLINE" --version 2>/dev/null)\` (tree: $rev); nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'); $(wrk --version 2>&1 | awk 'NR == 1 {print $1, $2}')"
        echo "- Command (as root, from the repo root): \`$COMMAND\`"
        echo "- Setup: a network namespace's loopback. nginx (1 worker, access_log off) answers GET /small ($(stat -c %s "$WORK/nginx.small") B of JSON, \`return 200\`) and GET /large (a $(stat -c %s "$WORK/nginx.large") B static file, sendfile and open_file_cache on); tcpdump records 6 requests to it, \`tapline import\` makes the snapshot, and \`tapline mock SNAP --threads 1\` answers from it (nginx's bodies and headers as recorded, plus \`X-Tapline-Mock: matched\`; curl checks the bodies byte for byte). The server under test is pinned to CPU 1, \`wrk -t1 -c$CONNS -d${DURATION}s --latency\` to CPU 0; nginx and the mock take turns, $RUNS runs each, medians shown. \"server CPU µs/request\" is the server process's user+system time during a run divided by the requests wrk completed: a figure that other load on the machine disturbs less than requests/s."
        echo
        echo "| body | server | requests/s | MB/s | p50 ms | p99 ms | server CPU µs/request | × nginx requests/s | × nginx requests per CPU-s |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for path in small large; do
            local n_rps m_rps n_cpu m_cpu
            n_rps=$(median "$WORK/wrk.nginx.$path" 1)
            m_rps=$(median "$WORK/wrk.mock.$path" 1)
            n_cpu=$(median "$WORK/wrk.nginx.$path" 6)
            m_cpu=$(median "$WORK/wrk.mock.$path" 6)
            for target in nginx mock; do
                local f=$WORK/wrk.$target.$path label
                [[ $target == nginx ]] && label="nginx (1 worker)" || label="tapline mock (--threads 1)"
                awk -v p="/$path" -v l="$label" -v rps="$(median "$f" 1)" -v mb="$(median "$f" 2)" \
                    -v p50="$(median "$f" 3)" -v p99="$(median "$f" 4)" -v cpu="$(median "$f" 6)" -v base="$n_rps" -v base_cpu="$n_cpu" \
                    'BEGIN { printf "| %s | %s | %.0f | %.1f | %.3f | %.3f | %.1f | %.2f× | %.2f× |\n", p, l, rps, mb, p50, p99, cpu, rps / base, (cpu > 0 ? base_cpu / cpu : 0) }'
            done
            echo "$path $n_rps $m_rps $n_cpu $m_cpu" >>"$WORK/ratios"
        done
        echo
        echo "Aim (issue): mock at 0.8× nginx or better."
        echo
        echo "| aim | measured | met |"
        echo "| --- | ---: | --- |"
        awk '{ r = $3 / $2; printf "| /%s: mock ≥ 0.8× nginx requests/s | %.2f× | %s |\n", $1, r, (r >= 0.8 ? "yes" : "**no**")
               c = $5 > 0 ? $4 / $5 : 0; printf "| /%s: mock ≥ 0.8× nginx requests per server CPU-second | %.2f× | %s |\n", $1, c, (c >= 0.8 ? "yes" : "**no**") }' "$WORK/ratios"
        echo
        echo "When wrk's core is the limit (the server's CPU use well under one core), both servers show about the same requests/s; requests per server CPU-second then tells them apart."
        echo
        echo "Every run per target (requests/s): $(for t in nginx mock; do for p in small large; do printf '%s /%s: %s; ' "$t" "$p" "$(awk '{printf "%.0f ", $1}' "$WORK/wrk.$t.$p")"; done; done | sed 's/ ;/;/g; s/; $//')."
        echo
        ((FAILS == 0)) && echo "Checks: the mock's bodies equal nginx's byte for byte; wrk saw no errors and no non-2xx answers." ||
            echo "**$FAILS check(s) FAILED** (see the FAIL lines of the run)."
        echo
        if [[ -s $WORK/profile.md ]]; then
            echo "### What limits the mock"
            echo
            cat "$WORK/profile.md"
        fi
        echo "The mock's summary after the runs:"
        echo
        echo '```text'
        cat "$WORK/mock.out"
        echo '```'
    } >"$md"
    echo
    cat "$md"
    if [[ $WRITE_RESULTS == 1 ]]; then
        write_results "$md"
        log "wrote $RESULTS"
    else
        log "not writing $RESULTS (not the default settings; BENCH_WRITE_RESULTS=1 forces it)"
    fi
}

# Replaces this script's section of RESULTS.md (between its markers), or appends it.
write_results() {
    local md=$1 begin='<!-- bench/mock.sh: begin -->' end='<!-- bench/mock.sh: end -->'
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
    cat "$new" >"$RESULTS"
}

main() {
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    ensure_tools
    WORK=$(mktemp -d /tmp/tapline-bench-mock.XXXXXX)
    chmod 755 "$WORK"
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    start_nginx
    record
    start_mock
    local run path
    for run in $(seq "$RUNS"); do
        for path in small large; do
            log "run $run of $RUNS: /$path, nginx then tapline mock"
            bench nginx "$NGINX_PORT" "$path"
            bench mock "$MOCK_PORT" "$path"
        done
    done
    [[ $PROFILE == 1 ]] && profile
    kill -TERM "$MOCK_PID"
    wait "$MOCK_PID" || fail "tapline mock exited non-zero after SIGTERM"
    MOCK_PID=""
    report
    if ((FAILS)); then
        echo "FAIL: $FAILS check(s) failed"
        exit 1
    fi
    echo "OK: all checks passed"
}

main "$@"
