#!/bin/bash
# Streaming: how many events a second tcpq writes as JSON to a file with
# nothing lost, and what it and bpftrace report lost past that.
#
#   sudo benches/stream.sh                 # RATES, SECS, BUFS below
#   RATES="1000000 max" SECS=5 BUFS="default 64m" sudo benches/stream.sh
#
# The events: every receive call on the generator's sockets (tcpq's
# `tcp_recvmsg where sport == PORT`, bpftrace's sock:sock_recv_length with
# the same test on the socket's port). The generator (`tcpq lab __gen
# stream`, netlab/src/stream.rs) runs in a namespace of its own, makes
# RATE receive calls a second over 4 loopback flows on 2 threads (or as
# many as it can: `max`) for SECS seconds, and counts them: the truth
# every tracer's written + lost must add up to. For each rate: one run
# per tcpq ring-buffer size in BUFS (`default`: tcpq's own 1 MiB), then
# one of bpftrace (`-f json`, printf of the same four values, default
# perf buffers), each against a fresh run of the generator, the tool
# writing to a file under target/bench/stream/.
set -euo pipefail
cd "$(dirname "$0")/.."
TCPQ=${TCPQ:-target/release/tcpq}
RATES=${RATES:-"250000 500000 1000000 1500000 2000000 max"}
SECS=${SECS:-5}
BUFS=${BUFS:-"default 64m"}
PORT=${PORT:-7000}
NS=tcpq-bench-stream
OUT=target/bench/stream
mkdir -p "$OUT"
[ -x "$TCPQ" ] || cargo build --release -q
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing

ip netns add $NS
trap 'ip netns del $NS 2>/dev/null || true' EXIT
ip -n $NS link set lo up

gen() { # RATE -> the generator's JSON line
    local r=()
    [ "$1" != max ] && r=(--rate "$1")
    ip netns exec $NS "$TCPQ" lab __gen stream --bind 127.0.0.1 --port "$PORT" \
        --seconds "$SECS" "${r[@]}"
}
field() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
settle() { # FILE: until it stops growing (the tool has written what it read)
    local n=-1
    for _ in $(seq 300); do
        [ "$(stat -c %s "$1")" = "$n" ] && return 0
        n=$(stat -c %s "$1"); sleep 0.5
    done
}
wait_for() { # FILE PATTERN
    for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "timed out waiting for $2 in $1" >&2; return 1
}

run_tcpq() { # RATE BUF -> "calls calls/s written lost cpu%"
    local args=() f="$OUT/tcpq-$1-$2"
    [ "$2" != default ] && args=(--buffer-size "$2")
    "$TCPQ" -e "on tcp_recvmsg where sport == $PORT print sport, dport, ret" \
        --format json -o "$f.json" "${args[@]}" >/dev/null 2>"$f.err" &
    local pid=$!
    wait_for "$f.err" attached
    local a t0 g b t1
    a=$(ticks $pid); t0=$(date +%s%N)
    g=$(gen "$1")
    b=$(ticks $pid); t1=$(date +%s%N)
    settle "$f.json"
    kill -INT $pid; wait $pid || true
    local lost
    lost=$(grep '"tcpq":"summary"' "$f.err" | field lost)
    echo "$(field recv_calls <<<"$g") $(field recv_calls_per_s <<<"$g") $(wc -l <"$f.json") $lost" \
        "$(( (b - a) * 1000000000 / (t1 - t0) ))"
}

run_bpftrace() { # RATE -> "calls calls/s written lost cpu%"
    local f="$OUT/bpftrace-$1"
    cat >"$f.bt" <<EOF
tracepoint:sock:sock_recv_length /((struct sock *)args->sk)->__sk_common.skc_num == $PORT/ {
  printf("{\"ns\":%llu,\"sport\":%d,\"dport\":%d,\"ret\":%d}\n", nsecs,
    ((struct sock *)args->sk)->__sk_common.skc_num,
    bswap(((struct sock *)args->sk)->__sk_common.skc_dport), args->ret);
}
EOF
    bpftrace -f json -o "$f.json" "$f.bt" >/dev/null 2>"$f.err" &
    local pid=$!
    wait_for "$f.json" attached_probes
    local a t0 g b t1
    a=$(ticks $pid); t0=$(date +%s%N)
    g=$(gen "$1")
    b=$(ticks $pid); t1=$(date +%s%N)
    # bpftrace exits on SIGINT without printing what its perf buffers
    # still hold (and without counting it lost): let it catch up first.
    settle "$f.json"
    kill -INT $pid; wait $pid || true
    local written lost
    written=$(grep -c '"type": "printf"' "$f.json" || true)
    lost=$({ grep '"type": "lost_events"' "$f.json" || true; } |
        { grep -o '"events": [0-9]*' || true; } | awk '{s += $2} END {print s + 0}')
    echo "$(field recv_calls <<<"$g") $(field recv_calls_per_s <<<"$g") $written $lost" \
        "$(( (b - a) * 1000000000 / (t1 - t0) ))"
}

echo "# $(date -u) $(uname -r) $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# tcpq $("$TCPQ" --version); $(bpftrace --version)"
echo "# SECS=$SECS; each cell: generator's calls (its rate/s), written, lost, tool CPU %"
printf '| asked/s |'
for b in $BUFS; do printf ' tcpq, %s ring |' "$b"; done
printf ' bpftrace |\n|---|'
for _ in $BUFS; do printf -- '---|'; done
printf -- '---|\n'
for r in $RATES; do
    printf '| %s |' "$r"
    for b in $BUFS; do
        read -r calls rate w lost cpu <<<"$(run_tcpq "$r" "$b")"
        printf ' %s (%.2f M/s): %s written, %s lost, %d%% CPU |' \
            "$calls" "$(echo "$rate / 1000000" | bc -l)" "$w" "$lost" "$cpu"
    done
    read -r calls rate w lost cpu <<<"$(run_bpftrace "$r")"
    printf ' %s (%.2f M/s): %s written, %s lost, %d%% CPU |\n' \
        "$calls" "$(echo "$rate / 1000000" | bc -l)" "$w" "$lost" "$cpu"
done
echo "# $(date -u); load: $(cut -d' ' -f1-3 /proc/loadavg)"
