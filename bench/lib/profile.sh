# bench/lib/profile.sh: the "What limits us" profile of `tapline import`.
# shellcheck shell=bash
# Sourced by bench/import.sh (uses its variables and helpers: DATA, WORK, TAPLINE, log, fail).

# ---------------------------------------------------------------- profile
# Writes the "What limits us" markdown to $WORK/profile.md.
profile() {
    local pcap=$DATA/small.pcap snap=$DATA/snap-profile out=$WORK/profile.md
    rm -rf "$snap"
    if perf record -q -o "$WORK/probe.data" -- true >/dev/null 2>&1; then
        log "profile: perf record -g of tapline import small.pcap --workers 1"
        perf record -g -q -o "$DATA/perf.data" -- "$TAPLINE" import "$pcap" --out "$snap" --workers 1 \
            >/dev/null 2>"$WORK/perf.err" || { cat "$WORK/perf.err" >&2; fail "perf record failed"; return; }
        local report=(perf report -i "$DATA/perf.data" --no-children --stdio)
        {
            echo "Command: \`perf record -g -- tapline import small.pcap --out SNAP --workers 1\` then"
            echo "\`perf report --no-children --sort comm,dso,symbol -g none\` (self time; event $(perf evlist -i "$DATA/perf.data" 2>/dev/null | awk 'NR == 1'))."
            echo
            echo "| self % | thread | object | function |"
            echo "| ---: | --- | --- | --- |"
            "${report[@]}" --sort comm,dso,symbol -g none 2>/dev/null |
                awk '/^ +[0-9.]+%/ {
                    sym = ""
                    for (i = 5; i <= NF; i++) sym = sym (i > 5 ? " " : "") $i
                    sub(/( -)+$/, "", sym); gsub(/\|/, "\\|", sym)
                    if (length(sym) > 140) sym = substr(sym, 1, 137) "..."
                    if (++n <= 25) printf "| %s | %s | %s | `%s` |\n", $1, $2, $3, sym }'
            echo
            echo "By thread (self %):"
            echo
            echo "| self % | thread |"
            echo "| ---: | --- |"
            "${report[@]}" --sort comm -g none 2>/dev/null |
                awk '/^ +[0-9.]+%/ { if (++n <= 10) printf "| %s | %s |\n", $1, $2 }'
            # Kernel time has no symbol of ours: show where it comes from.
            local ksym
            ksym=$("${report[@]}" --sort dso,symbol -g none 2>/dev/null |
                awk '/^ +[0-9.]+%/ && $2 == "[kernel.kallsyms]" && !done { print $4; done = 1 }')
            if [[ -n $ksym ]]; then
                echo
                echo "Call chain of the top kernel function, \`$ksym\` (\`perf report --no-children -S $ksym -g caller\`):"
                echo
                echo '```text'
                "${report[@]}" --sort comm,symbol -S "$ksym" -g caller,0.5,callee 2>/dev/null |
                    awk '/^#/ || /^ *$/ || /^ *\|? *$/ {next} ++n <= 40 {print}' | cut -c1-160
                echo '```'
            fi
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

