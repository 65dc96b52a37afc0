#!/bin/sh
# The kernel matrix's scenario: the same on the host and in every guest.
# POSIX sh (busybox in the guest). Prints marker lines the driver parses:
#   @@TCPQ doctor-begin / JSON / @@TCPQ doctor-end
#   @@TCPQ run NAME ms=WALL attach=STRATEGIES out=OUTPUT (JSON lines joined by ;)
# NAME is a probe (the strategy this kernel picks) or PROBE@STRATEGY (that
# strategy forced with --strategy; it fails where the kernel lacks it).
# Usage: scenario.sh TCPQ TCPGEN [GEN_PREFIX...]
# GEN_PREFIX (e.g. `ip netns exec NS`) runs the traffic generator elsewhere.
T=$1
G=$2
shift 2
# Word-split on purpose: `ip netns exec NS`.
PREFIX="$*"
N=20
SIZE=100
TMP=${TMPDIR:-/tmp}/tcpq-matrix.$$
mkdir -p "$TMP"

# busybox `date` has no %N; /proc/uptime has centiseconds everywhere.
now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

echo "@@TCPQ doctor-begin"
"$T" doctor --format json
echo "@@TCPQ doctor-end"

# The README's one-liner, exactly, with --duration: it attaches, runs 1 s
# and exits 0 by itself (no traffic here, so no zero window to print). A
# `*_loads` run: it must succeed everywhere, with the same (empty) answer.
start=$(now_ms)
"$T" -e 'on tcp_select_window where win == 0 print pid, comm' --duration 1s --format json \
    >"$TMP/seed.out" 2>"$TMP/seed.err"
rc=$?
attach=$(grep -o 'attached.*' "$TMP/seed.err" | head -n 1 | sed 's/;.*//; s/ /_/g')
echo "@@TCPQ run seed_one_liner_loads ms=$(($(now_ms) - start)) rc=$rc attach=$attach out=$(tr '\n' ';' <"$TMP/seed.out")"
grep -v 'attached\|"tcpq":"summary"' "$TMP/seed.err" | sed "s/^/@@TCPQ stderr seed_one_liner_loads /"

# run NAME PORT PROGRAM [STRATEGY]: attach, drive N lock-step exchanges on
# PORT (and, with REFUSE=PORT2 set, one connect() to PORT2, where nobody
# listens), stop tcpq with SIGINT, report what it counted.
run() {
    name=$1 port=$2 prog=$3
    if [ -n "${4:-}" ]; then
        name="$1@$4"
        set -- --strategy "$4"
    else
        set --
    fi
    start=$(now_ms)
    "$T" -e "$prog" --format json "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    pid=$!
    i=0
    while ! grep -q attached "$TMP/$name.err" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$i" -ge 1200 ]; then break; fi
        sleep 0.1
        i=$((i + 1))
    done
    $PREFIX "$G" serve "$port" "$N" "$SIZE" >/dev/null &
    srv=$!
    sleep 0.3
    $PREFIX "$G" client "$port" "$N" "$SIZE" >/dev/null
    wait "$srv"
    if [ -n "${REFUSE:-}" ]; then
        $PREFIX "$G" refuse "$REFUSE" >/dev/null
    fi
    sleep 0.5
    kill -INT "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    attach=$(grep -o 'attached.*' "$TMP/$name.err" | head -n 1 | sed 's/;.*//; s/ /_/g')
    # An event's wall-clock time differs between kernels; its shape
    # (RFC 3339, UTC, microseconds) must not.
    out=$(sed 's/"time":"[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]\{6\}Z"/"time":"RFC3339us"/' \
        "$TMP/$name.out" | tr '\n' ';')
    echo "@@TCPQ run $name ms=$(($(now_ms) - start)) rc=$rc attach=$attach out=$out"
    grep -v attached "$TMP/$name.err" | sed "s/^/@@TCPQ stderr $name /"
}

run tcp_select_window 47001 "on tcp_select_window where sport == 47001 and tcp_flags == 24 count by comm"

run tcp_probe 47002 "on tcp_probe where sport == 47002 and data_len > 0 count by comm"
run tcp_retransmit 47003 "on tcp_retransmit where (sport == 47003 or dport == 47003) and err == 0 count"
run tcp_state 47004 "on tcp_state where sport == 47004 or dport == 47004 count by oldstate, newstate"
run tcp_connect 47005 "on tcp_connect where dport == 47005 count by comm, wscale_ok"
REFUSE=47016
run tcp_connect_attempt 47015 "on tcp_connect_attempt where dport == 47015 or dport == 47016 count by comm, newstate, err, total_retrans"
REFUSE=
# The options every kernel here offers on loopback (the shift and the
# window depend on the kernel's buffer sizing: not compared).
run tcp_syn 47017 "on tcp_syn where sport == 47017 or dport == 47017 count by comm, ack, opt_mss, opt_wscale_ok, opt_sack_ok, opt_ts"
run tcp_accept 47006 "on tcp_accept where sport == 47006 count by comm, wscale_ok"
run tcp_close 47007 "on tcp_close where sport == 47007 or dport == 47007 count by comm, bytes_received"
run tcp_rtt 47008 "on tcp_rtt where sport == 47008 count by comm"
run tcp_cwnd 47009 "on tcp_cwnd where sport == 47009 count by comm"
run tcp_rcv_space 47010 "on tcp_rcv_space where sport == 47010 count by comm"
run tcp_reset 47011 "on tcp_reset where sport == 47011 or dport == 47011 count"
run tcp_drop 47012 "on tcp_drop where (sport == 47012 or dport == 47012) and not inbound count"
run tcp_connect_printed 47018 "on tcp_connect where dport == 47018 print dport, wscale_ok"
# A drop reason named in the program (bound from each kernel's BTF): the
# refused connect's SYN to 47015 finds no socket (one NO_SOCKET drop).
REFUSE=47015 run tcp_drop_by_name 47019 "on tcp_drop where sport == 47015 and inbound and reason in [NO_SOCKET] count"
# tlp reads the socket's timer state: its offsets resolve and the template
# verifies on every kernel (no loss here, so no retransmission).
run tcp_retransmit_tlp_loads 47020 "on tcp_retransmit where dport == 47020 and tlp count"
run tcp_sendmsg 47013 "on tcp_sendmsg where dport == 47013 count by comm, size"
run tcp_recvmsg 47014 "on tcp_recvmsg where sport == 47014 and ret > 0 count by comm, ret"
# Every strategy a kernel does not pick by itself, forced: the same
# program on another port must give the same answer.
run tcp_probe 47102 "on tcp_probe where sport == 47102 and data_len > 0 count by comm" tracepoint
run tcp_rtt 47108 "on tcp_rtt where sport == 47108 count by comm" tracepoint
run tcp_cwnd 47109 "on tcp_cwnd where sport == 47109 count by comm" tracepoint
for s in fexit sock_length kprobe; do
    run tcp_sendmsg 47113 "on tcp_sendmsg where dport == 47113 count by comm, size" $s
    run tcp_recvmsg 47114 "on tcp_recvmsg where sport == 47114 and ret > 0 count by comm, ret" $s
done
# The commands beside the probes, around one exchange on 47017: the
# kernel's counters over it (`tcpq counters`: one active and one passive
# open), and the listener as sock_diag shows it while it waits (`tcpq
# sockets`). Times and namespace numbers differ between kernels: left out.
tools() {
    port=47017
    start=$(now_ms)
    $PREFIX "$T" counters TcpActiveOpens TcpPassiveOpens --duration 4s --format json \
        >"$TMP/counters.out" 2>"$TMP/counters.err" &
    cpid=$!
    i=0
    while ! grep -q "first reading" "$TMP/counters.err" 2>/dev/null; do
        if ! kill -0 "$cpid" 2>/dev/null || [ "$i" -ge 300 ]; then break; fi
        sleep 0.1
        i=$((i + 1))
    done
    $PREFIX "$G" serve "$port" 1 10 >/dev/null &
    srv=$!
    sleep 0.3
    $PREFIX "$T" sockets --netns host where sport == "$port" print state, sport, snd_wscale \
        --format json >"$TMP/sockets.out" 2>"$TMP/sockets.err"
    src=$?
    $PREFIX "$G" client "$port" 1 10 >/dev/null
    wait "$srv"
    wait "$cpid"
    crc=$?
    out=$(sed 's/"time":"[^"]*",//; s/"seconds":[0-9.]*,//; s/"netns":[0-9]*,//; s/"netns_label":"[^"]*",//' \
        "$TMP/counters.out" | tr '\n' ';')
    echo "@@TCPQ run tools_counters ms=$(($(now_ms) - start)) rc=$crc attach= out=$out"
    grep -v "first reading" "$TMP/counters.err" | sed "s/^/@@TCPQ stderr tools_counters /"
    out=$(tr '\n' ';' <"$TMP/sockets.out")
    echo "@@TCPQ run tools_sockets ms=0 rc=$src attach= out=$out"
    sed "s/^/@@TCPQ stderr tools_sockets /" "$TMP/sockets.err"
}
tools
rm -rf "$TMP"
echo "@@TCPQ scenario-done"
