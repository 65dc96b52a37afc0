#!/usr/bin/env bash
# tcpq vs bpftrace, side by side, on the same questions in the same run.
# A benchmark, not a test: run it on demand, as root, on an otherwise quiet
# machine. Results go to stdout (markdown-ish) and to $OUT (default
# target/bench/) as raw files; docs/benchmarks.md quotes a run.
#
#   benches/compare.sh [all|startup|rss|footprint|kernel|host|stream|parse|startstop]...
#
# Needs: hyperfine, bpftrace, bpftool, iperf3, sockperf, python3,
# /usr/bin/time (GNU). RUNS (default 15) sets the number of timed runs;
# KERNEL_ROUNDS (default 3) the rounds of (4), KERNEL_QUERIES its questions
# (never late seed count print), HOST_RUNS (default 5) the runs of (4b).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
TCPQ=${TCPQ:-$here/target/release/tcpq}
BPFTRACE=${BPFTRACE:-$(command -v bpftrace)}
OUT=${OUT:-$here/target/bench}
RUNS=${RUNS:-15}
mkdir -p "$OUT"

[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x $TCPQ ]] || (cd "$here" && cargo build --release --quiet)
[[ -d /sys/kernel/tracing/events ]] || mount -t tracefs tracefs /sys/kernel/tracing
# bpftrace 0.17 tries to raise RLIMIT_MEMLOCK and complains when it cannot;
# 6.x kernels account BPF memory to the cgroup, so it loads anyway.

# --- the questions -------------------------------------------------------
# The seed one-liner. tcp_select_window() is inlined here; tcpq and the
# bpftrace program both read the window from the TCP header of each
# outgoing skb at net_dev_queue.
SEED_TCPQ='on tcp_select_window where win == 0 print pid, comm'
SEED_BT="$OUT/seed.bt"
cat > "$SEED_BT" <<'EOF'
tracepoint:net:net_dev_queue
{
  $skb = (struct sk_buff *)args->skbaddr;
  $th = (struct tcphdr *)($skb->head + $skb->transport_header);
  if ($skb->sk != 0 && $th->window == 0) { printf("%d %s\n", pid, comm); }
}
BEGIN { exit(); }
EOF
# Ten probes: ten clauses over three probes (tcpq loads one template per
# clause, so this is ten template objects; bpftrace attaches ten programs).
# From 12:00 to 19:00 on 2026-11-25 programs were limited to 8 clauses and
# this ran eight (4 + 2 + 2).
TEN_TCPQ="$OUT/ten.tcpq"
TEN_BT="$OUT/ten.bt"
: > "$TEN_TCPQ"
: > "$TEN_BT"
for i in 1 2 3 4; do
    echo "on tcp_probe where dport == $i print pid, comm, srtt" >> "$TEN_TCPQ"
    echo "tracepoint:tcp:tcp_probe /args->dport == $i/ { printf(\"%d %s %u\\n\", pid, comm, args->srtt); }" >> "$TEN_BT"
done
for i in 1 2 3; do
    echo "on tcp_retransmit where dport == $i count by comm" >> "$TEN_TCPQ"
    echo "tracepoint:tcp:tcp_retransmit_skb /args->dport == $i/ { @[comm] = count(); }" >> "$TEN_BT"
done
for i in 1 2 3; do
    echo "on tcp_select_window where win == 0 and dport == $i print pid, comm" >> "$TEN_TCPQ"
    cat >> "$TEN_BT" <<EOF
tracepoint:net:net_dev_queue { \$skb = (struct sk_buff *)args->skbaddr; \$th = (struct tcphdr *)(\$skb->head + \$skb->transport_header); if (\$skb->sk != 0 && \$th->window == 0 && \$th->dest == $i) { printf("%d %s\n", pid, comm); } }
EOF
done
echo 'BEGIN { exit(); }' >> "$TEN_BT"

median() { python3 -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.stdin.read().split()))'; }
ratio() { python3 -c "print(f'{$1/$2:.3f}')"; }

machine() {
    echo "## Machine"
    echo "- kernel: $(uname -r), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "- memory: $(awk '/MemTotal/ {print $2/1024 " MiB"}' /proc/meminfo)"
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- tcpq: $($TCPQ --version) ($(cd "$here" && git rev-parse --short HEAD))"
    echo "- bpftrace: $($BPFTRACE --version)"
    echo
}

# --- (1) exec -> attached -> detached -> exit ------------------------------
startup() {
    echo "## (1) exec → attached → detached → exit"
    local name tq bt
    for name in seed ten; do
        if [[ $name == seed ]]; then
            tq="$TCPQ -e '$SEED_TCPQ' --duration 0"
        else
            tq="$TCPQ $TEN_TCPQ --duration 0"
        fi
        bt="$BPFTRACE $OUT/$name.bt"
        [[ $name == ten ]] && bt="$BPFTRACE $TEN_BT"
        hyperfine -N -w 2 -r "$RUNS" --export-json "$OUT/startup-$name.json" \
            -n tcpq "$tq" -n bpftrace "$bt" >/dev/null 2>&1
        python3 - "$OUT/startup-$name.json" "$name" <<'EOF'
import json, sys, statistics as st
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
t, b = r["tcpq"], r["bpftrace"]
def cpu(x): return (x["user"] + x["system"]) * 1e3
print(f"- {sys.argv[2]}: wall median tcpq {t['median']*1e3:.0f} ms, bpftrace {b['median']*1e3:.0f} ms, "
      f"ratio {t['median']/b['median']:.2f} (target ≤ 0.10); "
      f"CPU mean tcpq {cpu(t):.0f} ms (user {t['user']*1e3:.0f} + sys {t['system']*1e3:.0f}), "
      f"bpftrace {cpu(b):.0f} ms (user {b['user']*1e3:.0f} + sys {b['system']*1e3:.0f}), ratio {cpu(t)/cpu(b):.2f}")
EOF
    done
    echo "  (\"ten\" is the ten-clause program, see TEN_TCPQ)"
    echo "- tcpq's own breakdown (TCPQ_TIMINGS=1), one run of the seed:"
    echo '```'
    TCPQ_TIMINGS=1 "$TCPQ" -e "$SEED_TCPQ" --duration 0 2>&1 | grep timings
    echo '```'
    echo
}

# --- (2) peak RSS -------------------------------------------------------
rss_of() { # command... -> peak RSS in KiB (median of 7)
    for _ in 1 2 3 4 5 6 7; do
        /usr/bin/time -f '%M' -o "$OUT/rss.tmp" "$@" >/dev/null 2>&1 || true
        tail -1 "$OUT/rss.tmp"
    done | median
}

rss() {
    echo "## (2) peak RSS (median of 7, KiB)"
    local a b
    a=$(rss_of "$TCPQ" -e "$SEED_TCPQ" --duration 0)
    b=$(rss_of "$BPFTRACE" "$SEED_BT")
    echo "- seed: tcpq $a, bpftrace $b, ratio $(ratio "$a" "$b") (target ≤ 0.10)"
    a=$(rss_of "$TCPQ" "$TEN_TCPQ" --duration 0)
    b=$(rss_of "$BPFTRACE" "$TEN_BT")
    echo "- ten probes: tcpq $a, bpftrace $b, ratio $(ratio "$a" "$b") (target ≤ 0.10)"
    echo
}

# --- (3) installed footprint ---------------------------------------------
footprint_of() { # binary -> bytes of it plus every shared library it loads
    local bin=$1
    { echo "$bin"; ldd "$bin" | awk '/=>/ {print $3} /^\t\/.*\(/ {print $1}'; } |
        grep '^/' | sort -u | while read -r f; do stat -L -c %s "$f"; done |
        awk '{s+=$1} END {print s}'
}

footprint() {
    echo "## (3) installed footprint (binary + shared libraries, bytes)"
    local a b
    a=$(footprint_of "$TCPQ")
    b=$(footprint_of "$BPFTRACE")
    echo "- tcpq: $a ($(ldd "$TCPQ" | grep -c '=>') libraries), bpftrace: $b ($(ldd "$BPFTRACE" | grep -c '=>') libraries), ratio $(ratio "$a" "$b")"
    echo "- bpftrace's five largest: $(ldd "$BPFTRACE" | awk '/=>/ {print $3}' | xargs stat -L -c '%s %n' | sort -rn | head -5 | awk '{printf "%s (%.0f MB) ", $2, $1/1e6}')"
    echo
}

# --- (4) in-kernel cost per event ---------------------------------------
prog_ids_of() { # pid -> prog ids its fds hold
    grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u
}

prog_stats() { # ids... -> "name run_time_ns run_cnt" lines
    local id
    for id in "$@"; do
        bpftool prog show id "$id" -j | python3 -c 'import json,sys; p=json.load(sys.stdin); print(p.get("name","?"), p.get("run_time_ns",0), p.get("run_cnt",0))'
    done
}

# run_under_load LABEL LOAD -- command...: start the tool, wait until it
# attached, run LOAD, read the kernel's per-program stats, stop the tool.
run_under_load() {
    local label=$1 load=$2; shift 3
    "$@" > "$OUT/kernel-$label.out" 2> "$OUT/kernel-$label.err" &
    local pid=$!
    for _ in $(seq 100); do grep -qiE 'attached|Attaching' "$OUT/kernel-$label.err" && break; sleep 0.1; done
    sleep 0.5
    eval "$load" >/dev/null 2>&1
    mapfile -t ids < <(prog_ids_of $pid)
    prog_stats "${ids[@]}" > "$OUT/kernel-$label.stats"
    kill -INT $pid; wait $pid || true
}

kernel() {
    local rounds=${KERNEL_ROUNDS:-3}
    echo "## (4) in-kernel cost per event (bpf_stats_enabled, loopback load; median of $rounds rounds)"
    sysctl -q -w kernel.bpf_stats_enabled=1
    iperf3 -s -D -1 -p 5301 >/dev/null 2>&1 || true
    sockperf sr --tcp -p 5302 >/dev/null 2>&1 &
    local srv=$!
    sleep 0.5
    local loads=(
        "iperf3|iperf3 -s -D -1 -p 5301 >/dev/null 2>&1; sleep 0.3; iperf3 -c 127.0.0.1 -p 5301 -t 5"
        "sockperf|sockperf tp --tcp -i 127.0.0.1 -p 5302 -m 64 -t 5"
    )
    local q l tq bt r
    # Each round goes over every load and question, tcpq then bpftrace each
    # time, so that a drift of the machine (the iperf3 figures move by
    # 10-20% between runs) touches both tools alike. Medians are per tool;
    # the ratio is of the medians.
    for r in $(seq "$rounds"); do
        for l in "${loads[@]}"; do
            local lname=${l%%|*} lcmd=${l#*|}
            for q in ${KERNEL_QUERIES:-never late seed count print}; do
                case $q in
                    # The filter reads only probe fields: since
                    # 570a341 it runs before the socket is read.
                    never) tq='on tcp_probe where snd_cwnd == 123456789 print pid'
                           bt='tracepoint:tcp:tcp_probe /args->snd_cwnd == 123456789/ { printf("%d\n", pid); }' ;;
                    # sport is a socket field: the filter runs after the record
                    # is built (the cost of `never` before 570a341).
                    late)  tq='on tcp_probe where snd_cwnd == 123456789 and sport == 1 print pid'
                           bt='tracepoint:tcp:tcp_probe /args->snd_cwnd == 123456789 && args->sport == 1/ { printf("%d\n", pid); }' ;;
                    # The seed's probe with a window that never occurs.
                    seed)  tq='on tcp_select_window where win == 12345 print pid, comm'
                           bt='tracepoint:net:net_dev_queue { $skb = (struct sk_buff *)args->skbaddr; $th = (struct tcphdr *)($skb->head + $skb->transport_header); if ($skb->sk != 0 && $th->window == 12345) { printf("%d %s\n", pid, comm); } }' ;;
                    count) tq='on tcp_probe count by comm'
                           bt='tracepoint:tcp:tcp_probe { @[comm] = count(); }' ;;
                    print) tq='on tcp_probe print pid, comm, snd_cwnd'
                           bt='tracepoint:tcp:tcp_probe { printf("%d %s %u\n", pid, comm, args->snd_cwnd); }' ;;
                esac
                run_under_load "tcpq-$lname-$q-$r" "$lcmd" -- "$TCPQ" -e "$tq"
                run_under_load "bt-$lname-$q-$r" "$lcmd" -- "$BPFTRACE" -e "$bt"
            done
        done
    done
    for l in "${loads[@]}"; do
        for q in ${KERNEL_QUERIES:-never late seed count print}; do
            python3 - "$OUT" "${l%%|*}" "$q" "$rounds" <<'EOF'
import statistics, sys
out, load, q, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def rows(p): return [(n, int(t), int(c)) for n, t, c in (l.split() for l in open(p) if l.strip())]
def per(rs):
    n = sum(r[2] for r in rs); return (sum(r[1] for r in rs) / n if n else float("nan")), n
tcpq, own, bt = [], [], []
for r in range(1, rounds + 1):
    t = rows(f"{out}/kernel-tcpq-{load}-{q}-{r}.stats")
    b = rows(f"{out}/kernel-bt-{load}-{q}-{r}.stats")
    tcpq.append(per([x for x in t if x[0].startswith("tcpq_") and not x[0].startswith("tcpq_own")]))
    own.append(per([x for x in t if x[0].startswith("tcpq_own")]))
    bt.append(per([x for x in b if x[2] > 0 and "BEGIN" not in x[0] and "END" not in x[0]]))
med = lambda xs, i: statistics.median(x[i] for x in xs)
tm, bm = med(tcpq, 0), med(bt, 0)
each = ", ".join(f"{a[0]:.0f}/{b[0]:.0f}" for a, b in zip(tcpq, bt))
# The owner programs run on their own events (every send and receive,
# state changes), not the template's: their cost per run, and how often.
print(f"- {load}, {q}: tcpq template {tm:.0f} ns/event over {med(tcpq, 1):.0f} events "
      f"(owner tracking: {med(own, 1):.0f} runs, {med(own, 0):.0f} ns a run), "
      f"bpftrace {bm:.0f} ns/event over {med(bt, 1):.0f} events, "
      f"template/bpftrace {tm / bm if bm else float('nan'):.2f} (each round, tcpq/bpftrace: {each})")
EOF
        done
    done
    kill $srv 2>/dev/null || true
    sysctl -q -w kernel.bpf_stats_enabled=0
    echo
}

# --- (4b) the host's cost --------------------------------------------------
# bpf_stats counts a program's own run time only: not the tracepoint's
# dispatch, nor a classic tracepoint's record, which the kernel builds
# before the program runs. The whole cost shows in what a CPU-bound
# workload still gets done: sockperf's message rate (64-byte messages on
# loopback, as fast as they go) with nothing attached and with each tool
# attached to the same question.
host() {
    echo "## (4b) the host's cost: sockperf's message rate with each tool attached"
    sockperf sr --tcp -p 5304 >/dev/null 2>&1 &
    local srv=$! label cmd pid rates
    sleep 0.5
    local tools=(
        "nothing attached|"
        "tcpq, never-matching filter, print pid (owner tracking waits for the first event)|$TCPQ -e 'on tcp_probe where snd_cwnd == 123456789 print pid'"
        "tcpq, never-matching filter on comm, print pid (owner tracking from the start)|$TCPQ -e 'on tcp_probe where comm == \"tcpq-nobody\" print pid'"
        "tcpq, never-matching filter, print task_pid (bpftrace's pid: the task on the CPU; no owner tracking)|$TCPQ -e 'on tcp_probe where snd_cwnd == 123456789 print task_pid'"
        "bpftrace, never-matching filter, print pid|$BPFTRACE -e 'tracepoint:tcp:tcp_probe /args->snd_cwnd == 123456789/ { printf(\"%d\\n\", pid); }'"
    )
    local t
    for t in "${tools[@]}"; do
        label=${t%%|*} cmd=${t#*|} pid=
        if [[ -n $cmd ]]; then
            eval "exec $cmd" > "$OUT/host.out" 2> "$OUT/host.err" &
            pid=$!
            for _ in $(seq 100); do grep -qiE 'attached|Attaching' "$OUT/host.err" "$OUT/host.out" && break; sleep 0.1; done
            sleep 0.5
        fi
        rates=$(for _ in $(seq "${HOST_RUNS:-5}"); do
            sockperf tp --tcp -i 127.0.0.1 -p 5304 -m 64 -t 3 2>&1 | grep -oE 'Message Rate is [0-9]+' | grep -oE '[0-9]+$'
        done)
        [[ -n $pid ]] && { kill -INT "$pid"; wait "$pid" || true; }
        echo "- $label: median $(echo "$rates" | median) messages/s (runs: $(echo $rates))"
    done
    kill $srv 2>/dev/null || true
    echo
}

# --- (5) streaming -------------------------------------------------------
stream() {
    echo "## (5) streaming to a file, JSON (tcp_probe events from sockperf at a set rate)"
    echo "Both tools attached at once to the same traffic, so they see the same events;"
    echo "the kernel's own count of them is sockperf's client socket's segs_in (ss)."
    sockperf sr --tcp -p 5303 >/dev/null 2>&1 &
    local srv=$! mps
    sleep 0.5
    for mps in 20000 50000 100000 200000 max; do
        "$TCPQ" -e 'on tcp_probe where dport == 5303 print pid, comm, snd_cwnd, srtt' --format json \
            > "$OUT/stream-tcpq.json" 2> "$OUT/stream-tcpq.err" &
        local tp=$!
        "$BPFTRACE" -f json -e 'tracepoint:tcp:tcp_probe /args->dport == 5303/ { printf("%d %s %u %u\n", pid, comm, args->snd_cwnd, args->srtt); }' \
            > "$OUT/stream-bt.json" 2> "$OUT/stream-bt.err" &
        local bp=$!
        for _ in $(seq 100); do grep -q attached "$OUT/stream-tcpq.err" && break; sleep 0.1; done
        for _ in $(seq 100); do grep -qE "Attaching|attached_probes" "$OUT/stream-bt.json" && break; sleep 0.1; done
        sleep 0.3
        # sockperf tp in the background so that its socket's counters can be
        # read just before it closes.
        sockperf tp --tcp -i 127.0.0.1 -p 5303 -m 64 -t 5 --mps="$mps" >/dev/null 2>&1 &
        local cp=$! segs=0 s
        while kill -0 $cp 2>/dev/null; do
            s=$(ss -tinH dst 127.0.0.1 dport = :5303 2>/dev/null | grep -oE 'segs_in:[0-9]+' | head -n 1 | cut -d: -f2 || true)
            [ -n "$s" ] && segs=$s
            sleep 0.2
        done
        wait $cp || true
        sleep 0.3
        kill -INT $tp; wait $tp || true
        kill -INT $bp; timeout 10 tail --pid=$bp -f /dev/null || kill -KILL $bp; wait $bp || true
        local n lost bn blost
        n=$(wc -l < "$OUT/stream-tcpq.json")
        lost=$(grep -oE '^tcpq: [0-9]+ events lost' "$OUT/stream-tcpq.err" | grep -oE '[0-9]+' || echo 0)
        bn=$(grep -c '"type": "printf"' "$OUT/stream-bt.json" || true)
        blost=$(grep -oE '"lost_events", "data": \{"events": [0-9]+' "$OUT/stream-bt.json" | grep -oE '[0-9]+$' | paste -sd+ | bc 2>/dev/null || echo 0)
        echo "- sockperf --mps=$mps for 5 s: the client socket received >= $segs segments (ss segs_in, last read up to 0.2 s before it closed); tcpq wrote $n events, reported $((${lost:-0})) lost; bpftrace wrote $bn, reported ${blost:-0} lost"
    done
    kill $srv 2>/dev/null || true
    echo
}

# --- (6) parsing and planning ------------------------------------------------
parse() {
    echo "## (6) parse + check + plan (tcpq --check), wall median"
    # Valid recipes of about N lines: clauses of 63 lines each (a filter
    # of 62 ports, one per line, then the print), at most 16 clauses (the
    # language's limit), so N = 1000 is 16 clauses and 1008 lines.
    local n
    for n in 125 250 500 1000; do
        python3 - "$n" > "$OUT/lines-$n.tcpq" <<'EOF'
import sys
clauses = min(16, -(-int(sys.argv[1]) // 63))
for c in range(clauses):
    base = c * 62
    print("on tcp_probe where dport == %d" % (base + 1))
    for k in range(2, 63):
        print("    or dport == %d" % (base + k))
    print("    print pid, comm, srtt")
EOF
    done
    hyperfine -N -w 3 -r "$RUNS" --export-json "$OUT/parse.json" \
        -n oneliner "$TCPQ --check -e '$SEED_TCPQ'" \
        -n 125 "$TCPQ --check $OUT/lines-125.tcpq" \
        -n 250 "$TCPQ --check $OUT/lines-250.tcpq" \
        -n 500 "$TCPQ --check $OUT/lines-500.tcpq" \
        -n 1000 "$TCPQ --check $OUT/lines-1000.tcpq" >/dev/null 2>&1
    python3 - "$OUT/parse.json" "$OUT" <<'EOF'
import json, sys
r = {x["command"]: x["median"] * 1e3 for x in json.load(open(sys.argv[1]))["results"]}
base = r["oneliner"]
for k in ["oneliner", "125", "250", "500", "1000"]:
    if k == "oneliner":
        print(f"- oneliner: {r[k]:.2f} ms")
        continue
    lines = sum(1 for _ in open(f"{sys.argv[2]}/lines-{k}.tcpq"))
    print(f"- {lines} lines: {r[k]:.2f} ms, {(r[k]-base)/lines*1e3:.1f} µs per line over the one-liner")
EOF
    echo
}

# --- (7) start and stop, every probe ----------------------------------------
# For every probe of the catalog, one program as a new user would write it
# (a filter on a field, then print pid, comm), and bpftrace's program on
# the same kernel moment. Each run is timed in three points: exec, the
# tool's "attached" line (tcpq's "tcpq: attached ..." on stderr, printed
# once every probe is attached; bpftrace's BEGIN, which runs after its
# probes are attached), and the tool's exit. Alternating runs, medians.
# tcp_sendmsg and tcp_recvmsg run twice: with `size` (the syscall entries,
# classic tracepoints) and with only `ret` (no syscall tracepoint).
# After the runs, bpftool and every process's fdinfo must show nothing
# of tcpq's left attached.
STARTSTOP_PROBES=(
    "tcp_select_window|on tcp_select_window where win == 0 print pid, comm|tracepoint:net:net_dev_queue { \$skb = (struct sk_buff *)args->skbaddr; \$th = (struct tcphdr *)(\$skb->head + \$skb->transport_header); if (\$skb->sk != 0 && \$th->window == 0) { printf(\"%d %s\\n\", pid, comm); } }"
    "tcp_syn|on tcp_syn where dport == 1 print pid, comm, mss|tracepoint:net:net_dev_queue { \$skb = (struct sk_buff *)args->skbaddr; \$th = (struct tcphdr *)(\$skb->head + \$skb->transport_header); if (\$skb->sk != 0 && \$th->syn && \$th->dest == 256) { printf(\"%d %s\\n\", pid, comm); } }"
    "tcp_probe|on tcp_probe where snd_wnd == 0 print pid, comm|tracepoint:tcp:tcp_probe /args->snd_wnd == 0/ { printf(\"%d %s\\n\", pid, comm); }"
    "tcp_retransmit|on tcp_retransmit where dport == 1 print pid, comm|tracepoint:tcp:tcp_retransmit_skb /args->dport == 1/ { printf(\"%d %s\\n\", pid, comm); }"
    "tcp_state|on tcp_state where dport == 1 print pid, comm, state|tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->dport == 1/ { printf(\"%d %s %d\\n\", pid, comm, args->newstate); }"
    "tcp_connect|on tcp_connect where dport == 1 print pid, comm|tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 2 && args->newstate == 1 && args->dport == 1/ { printf(\"%d %s\\n\", pid, comm); }"
    "tcp_connect_attempt|on tcp_connect_attempt where dport == 1 print pid, comm|tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 2 && args->dport == 1/ { printf(\"%d %s\\n\", pid, comm); }"
    "tcp_accept|on tcp_accept where dport == 1 print pid, comm|tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 3 && args->newstate == 1 && args->dport == 1/ { printf(\"%d %s\\n\", pid, comm); }"
    "tcp_close|on tcp_close where dport == 1 print pid, comm|tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->newstate == 7 && args->dport == 1/ { printf(\"%d %s\\n\", pid, comm); }"
    "tcp_rtt|on tcp_rtt where srtt > 1s print pid, comm, srtt|tracepoint:tcp:tcp_probe /args->srtt > 8000000/ { printf(\"%d %s %u\\n\", pid, comm, args->srtt); }"
    "tcp_cwnd|on tcp_cwnd where snd_cwnd == 1 print pid, comm|tracepoint:tcp:tcp_probe /args->snd_cwnd == 1/ { printf(\"%d %s\\n\", pid, comm); }"
    "tcp_rcv_space|on tcp_rcv_space where dport == 1 print pid, comm|tracepoint:tcp:tcp_rcv_space_adjust /args->dport == 1/ { printf(\"%d %s\\n\", pid, comm); }"
    "tcp_reset|on tcp_reset where dport == 1 print pid, comm|tracepoint:tcp:tcp_send_reset { printf(\"%d %s\\n\", pid, comm); } tracepoint:tcp:tcp_receive_reset /args->dport == 1/ { printf(\"%d %s\\n\", pid, comm); }"
    "tcp_drop|on tcp_drop where dport == 1 print pid, comm, reason|tracepoint:skb:kfree_skb /args->protocol == 0x0008 && args->reason > 2/ { printf(\"%d %s %d\\n\", pid, comm, args->reason); }"
    "tcp_sendmsg|on tcp_sendmsg where size > 1MiB print pid, comm, size|tracepoint:syscalls:sys_enter_write { @size[tid] = args->count; } tracepoint:syscalls:sys_enter_sendto { @size[tid] = args->len; } tracepoint:sock:sock_send_length /@size[tid] > 1048576/ { printf(\"%d %s %d\\n\", pid, comm, @size[tid]); delete(@size[tid]); }"
    "tcp_recvmsg|on tcp_recvmsg where size > 1MiB print pid, comm, size|tracepoint:syscalls:sys_enter_read { @size[tid] = args->count; } tracepoint:syscalls:sys_enter_recvfrom { @size[tid] = args->size; } tracepoint:sock:sock_recv_length /@size[tid] > 1048576/ { printf(\"%d %s %d\\n\", pid, comm, @size[tid]); delete(@size[tid]); }"
    "tcp_sendmsg/ret|on tcp_sendmsg where ret > 1MiB print pid, comm, ret|tracepoint:sock:sock_send_length /args->ret > 1048576/ { printf(\"%d %s %d\\n\", pid, comm, args->ret); }"
    "tcp_recvmsg/ret|on tcp_recvmsg where ret > 1MiB print pid, comm, ret|tracepoint:sock:sock_recv_length /args->ret > 1048576/ { printf(\"%d %s %d\\n\", pid, comm, args->ret); }"
)

startstop() {
    echo "## (7) start and stop, every probe: exec → attached → exit (--duration 0), medians of $RUNS"
    local p floor
    floor=$(bpftool prog show -j | python3 -c 'import json,sys; print(max([p["id"] for p in json.load(sys.stdin)] or [0]))')
    : > "$OUT/startstop.list"
    for p in "${STARTSTOP_PROBES[@]}"; do
        IFS='|' read -r name tq bt <<< "$p"
        printf '%s\t%s\t%s BEGIN { printf("attached\\n"); exit(); }\n' "$name" "$tq" "$bt" >> "$OUT/startstop.list"
    done
    python3 - "$OUT/startstop.list" "$TCPQ" "$BPFTRACE" "$RUNS" "${STARTSTOP_ONLY:-}" <<'EOF'
import os, select, statistics as st, subprocess, sys, time
lst, tcpq, bpftrace, runs, only = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split()

def once(argv, marker):
    """exec -> the marker line -> exit, in ms (None for a run that failed)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    t1 = None
    buf = {p.stdout.fileno(): b"", p.stderr.fileno(): b""}
    open_fds = list(buf)
    while open_fds:
        r, _, _ = select.select(open_fds, [], [], 10)
        if not r:
            p.kill(); break
        for fd in r:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.remove(fd); continue
            buf[fd] += chunk
            if t1 is None and marker in buf[fd]:
                t1 = time.perf_counter()
    p.wait()
    t2 = time.perf_counter()
    if p.returncode != 0 or t1 is None:
        sys.stderr.write(f"failed ({p.returncode}): {argv}: {buf[p.stderr.fileno()][-300:]}\n")
        return None
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t2 - t0) * 1e3

print("| probe | tcpq exec→attached | tcpq attached→exit | tcpq total | bpftrace exec→attached | bpftrace attached→exit | bpftrace total | ratio (total) |")
print("|---|---|---|---|---|---|---|---|")
worst = 0
for line in open(lst):
    name, tq, bt = line.rstrip("\n").split("\t")
    if only and name not in only:
        continue
    a = [tcpq, "-e", tq, "--duration", "0"]
    b = [bpftrace, "-e", bt]
    res = {"t": [], "b": []}
    for i in range(runs + 1):
        x, y = once(a, b"tcpq: attached"), once(b, b"attached\n")
        if i == 0:
            continue  # warm-up
        if x: res["t"].append(x)
        if y: res["b"].append(y)
    m = {k: [st.median(r[j] for r in v) if v else float("nan") for j in range(3)] for k, v in res.items()}
    t, b = m["t"], m["b"]
    worst = max(worst, t[2] / b[2])
    print(f"| {name} | {t[0]:.0f} ms | {t[1]:.0f} ms | {t[2]:.0f} ms | {b[0]:.0f} ms | {b[1]:.0f} ms | {b[2]:.0f} ms | {t[2]/b[2]:.3f} |")
print(f"\nworst ratio: {worst:.3f} (target ≤ 0.10)")
EOF
    # Nothing of tcpq's may stay attached: a tcpq_* program above the
    # highest id from before the runs that no live process holds (other
    # tcpq processes may run meanwhile) would be kept by the kernel alone.
    python3 - "$floor" <<'EOF'
import glob, json, subprocess, sys, time
floor = int(sys.argv[1])
def held():
    ids = set()
    for f in glob.glob("/proc/[0-9]*/fdinfo/*"):
        try:
            ids.update(int(l.split()[1]) for l in open(f) if l.startswith("prog_id:"))
        except OSError:
            pass
    return ids
def left():
    progs = json.loads(subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True).stdout)
    h = held()
    return [p["id"] for p in progs if p.get("name", "").startswith("tcpq_") and p["id"] > floor and p["id"] not in h]
time.sleep(1)  # programs are freed after an RCU grace period
l = left()
links = json.loads(subprocess.run(["bpftool", "link", "show", "-j"], capture_output=True).stdout)
print(f"- tcpq programs left in the kernel after the runs, held by no process: {len(l)} {l}; "
      f"links to them: {sum(1 for k in links if k.get('prog_id') in l)}")
EOF
    echo
}

sections=("$@")
[[ ${#sections[@]} == 0 || ${sections[0]} == all ]] && sections=(startup rss footprint kernel host stream parse startstop)
machine
for s in "${sections[@]}"; do "$s"; done
