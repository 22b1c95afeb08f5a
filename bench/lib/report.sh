# bench/lib/report.sh: the markdown table of bench/import.sh and its section of RESULTS.md.
# shellcheck shell=bash
# Sourced by bench/import.sh (uses its variables and helpers: DATA, WORK, TAPLINE, log, fail).

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
        echo "- tapline: \`$("$TAPLINE" --version 2>/dev/null)\`, binary built $(date -u -r "$TAPLINE" '+%Y-%m-%d %H:%M UTC') (tree at run time: $rev); peer: $(tshark --version | awk 'NR == 1 {print $1, $3}')"
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

