#!/usr/bin/env bash
# Why a never-matching filter costs tcpq more per event than bpftrace: the
# shipped quick step against the same template built with the constant
# compiled into the instruction (as bpftrace does), the same again with a
# read of the configuration whose result nothing uses, and bpftrace, one at
# a time in turn, each under the same loopback load. An analysis, not part of
# compare.sh: it builds experimental templates that tcpq never ships
# (tcpq's rule: a different `where` clause is different map contents, not a
# different program).
#
#   benches/quick-step.sh [iperf3|sockperf]      (ROUNDS, default 5)
#
# Needs root, bpftrace, bpftool, iperf3 or sockperf, python3, and the
# templates' toolchain (probe-templates/build.sh --install). Prints the
# median ns/event (bpf_stats run time / run count) of each.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
load=${1:-iperf3}
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -d /sys/kernel/tracing/events ]] || mount -t tracefs tracefs /sys/kernel/tracing
work=$(mktemp -d)
trap 'sysctl -q -w kernel.bpf_stats_enabled=0; kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

value=123456789
fmt=/sys/kernel/tracing/events/tcp/tcp_probe/format
off=$(sed -n 's/.*field:__u32 snd_cwnd;[[:space:]]*offset:\([0-9]*\);.*/\1/p' "$fmt")
[[ -n $off ]] || { echo "no snd_cwnd in $fmt" >&2; exit 1; }

# The experimental objects; TCPQ_TEST_TEMPLATE makes a debug tcpq use them.
# `immediate`: the constant in the instruction; `dead-read`: the same after
# a read of the configuration that nothing uses.
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' "$here/probe-templates/ebpf/rust-toolchain.toml")
build() {
    (cd "$here/probe-templates/ebpf" &&
        env TCPQ_EXPERIMENT_IMMEDIATE="$off:$value" CARGO_TARGET_DIR="$work/$1" "${@:2}" \
            cargo +"$toolchain" build --quiet --release --bin tcp_probe)
    echo "$work/$1/bpfel-unknown-none/release/tcp_probe"
}
immediate=$(build immediate)
dead_read=$(build dead-read TCPQ_EXPERIMENT_DEAD_READ=1)
(cd "$here" && cargo build --quiet)
tcpq="$here/target/debug/tcpq"

query="on tcp_probe where snd_cwnd == $value print pid"
bt="tracepoint:tcp:tcp_probe /args->snd_cwnd == $value/ { printf(\"%d\\n\", pid); }"
case $load in
    iperf3) run_load() { iperf3 -s -D -1 -p 5321 >/dev/null 2>&1; sleep 0.3; iperf3 -c 127.0.0.1 -p 5321 -t 3 >/dev/null 2>&1; } ;;
    sockperf) sockperf sr --tcp -p 5322 >/dev/null 2>&1 &
              sleep 0.5
              run_load() { sockperf tp --tcp -i 127.0.0.1 -p 5322 -m 64 -t 3 >/dev/null 2>&1; } ;;
    *) echo "usage: $0 [iperf3|sockperf]" >&2; exit 2 ;;
esac

# measure LABEL command...: start it, wait until attached, load, read the
# stats of its programs (owner tracking's aside), stop it.
measure() {
    local label=$1; shift
    sysctl -q -w kernel.bpf_stats_enabled=1
    "$@" >"$work/out" 2>"$work/err" &
    local pid=$! id
    for _ in $(seq 100); do grep -qiE 'attached|Attaching' "$work/err" "$work/out" && break; sleep 0.1; done
    sleep 0.5
    run_load
    for id in $(grep -h '^prog_id:' /proc/$pid/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u); do
        bpftool prog show id "$id" -j | python3 -c '
import json, sys
p = json.load(sys.stdin)
n, t, name = p.get("run_cnt", 0), p.get("run_time_ns", 0), p.get("name", "?")
if n and not name.startswith("tcpq_own") and name not in ("BEGIN", "END"):
    print(sys.argv[1], t / n)' "$label"
    done
    kill -INT $pid; wait $pid || true
    sysctl -q -w kernel.bpf_stats_enabled=0
}

for _ in $(seq "$ROUNDS"); do
    measure shipped "$tcpq" -e "$query"
    TCPQ_TEST_TEMPLATE="tcp_probe=$immediate" measure immediate "$tcpq" -e "$query"
    TCPQ_TEST_TEMPLATE="tcp_probe=$dead_read" measure dead-read "$tcpq" -e "$query"
    measure bpftrace bpftrace -e "$bt"
done > "$work/res"

echo "## quick step, $load load, snd_cwnd (record offset $off) == $value, $ROUNDS rounds: median ns/event"
python3 - "$work/res" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, v = line.split()
    d[k].append(float(v))
bt = statistics.median(d["bpftrace"])
for k in ("shipped", "immediate", "dead-read", "bpftrace"):
    m = statistics.median(d[k])
    print(f"- {k}: {m:.1f} ns/event ({m / bt:.2f} of bpftrace) runs: " + ", ".join(f"{v:.1f}" for v in d[k]))
PY
