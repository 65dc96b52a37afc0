#!/usr/bin/env bash
# `tcpq serve`'s costs. A benchmark, not a test: run it on demand, as root,
# on an otherwise quiet machine (every line notes the load average).
#
#   benches/serve.sh [all|scrape|rss|host]...
#
# (1) scrape: 10 clauses x 1,000 series each (ten aggregations by dport of
#     tcp_connect_attempt, fed by connect()s to 1,000 closed ports inside a
#     network namespace this script creates): the latency of a scrape
#     (curl's time_total) and tcpq's CPU per scrape (utime+stime from
#     /proc/PID/stat over SCRAPES scrapes), in both formats.
# (2) rss: serve with 10 recipes attached for RSS_SECONDS (default 600),
#     scraped every 15 s as Prometheus would, under iperf3 on loopback:
#     VmRSS every 30 s.
# (3) host: sockperf's message rate (64-byte messages on loopback) with
#     nothing attached, with `tcpq serve` of the four shipped metrics
#     recipes, and with bpftrace holding the same four aggregations.
#     bpftrace has no scrape endpoint, so (1) and (2) have no bpftrace
#     column; ebpf_exporter is not packaged by Debian, so it is not here.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
TCPQ=${TCPQ:-$here/target/release/tcpq}
BPFTRACE=${BPFTRACE:-$(command -v bpftrace)}
OUT=${OUT:-$here/target/bench}
SCRAPES=${SCRAPES:-30}
RSS_SECONDS=${RSS_SECONDS:-600}
HOST_RUNS=${HOST_RUNS:-5}
PORT=${PORT:-9471}
mkdir -p "$OUT"

[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x $TCPQ ]] || (cd "$here" && cargo build --release --quiet)
[[ -d /sys/kernel/tracing/events ]] || mount -t tracefs tracefs /sys/kernel/tracing

NS=tcpqbench-serve$$
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT

load() { cut -d' ' -f1 /proc/loadavg; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# serve_start FILE...: a `tcpq serve` on 127.0.0.1:$PORT, its pid in
# SERVE_PID, once /-/ready answers 200.
serve_start() {
    "$TCPQ" serve --listen "127.0.0.1:$PORT" "$@" 2> "$OUT/serve.err" > /dev/null &
    local pid=$!
    SERVE_PID=$pid
    pids+=("$pid")
    for _ in $(seq 300); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/-/ready") == 200 ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$OUT/serve.err" >&2; exit 1; }
        sleep 0.1
    done
}
serve_stop() {
    kill -INT "$1"; wait "$1" || true
}

# --- (1) scrape -----------------------------------------------------------
scrape() {
    echo "## (1) a scrape of 10 clauses x 1,000 series"
    local prog="$OUT/serve-scrape.tcpq"
    cat > "$prog" <<'P'
# Ten aggregations by dport of connect attempts to ports 20000..20999.
on tcp_connect_attempt where dport in 20000..20999 count by dport as bench_attempts_a
on tcp_connect_attempt where dport in 20000..20999 count by dport as bench_attempts_b
on tcp_connect_attempt where dport in 20000..20999 count by dport, err as bench_attempts_by_err
on tcp_connect_attempt where dport in 20000..20999 sum duration by dport as bench_duration_sum_seconds
on tcp_connect_attempt where dport in 20000..20999 avg duration by dport as bench_duration_avg_seconds
on tcp_connect_attempt where dport in 20000..20999 stats duration by dport as bench_duration_seconds
on tcp_connect_attempt where dport in 20000..20999 hist duration by dport as bench_duration_hist_seconds
on tcp_connect_attempt where dport in 20000..20999 lhist total_retrans, 0, 8, 1 by dport as bench_syn_retrans
on tcp_connect_attempt where dport in 20000..20999 max total_retrans by dport as bench_syn_retrans_max
on tcp_connect_attempt where dport in 20000..20999 min duration by dport as bench_duration_min_seconds
P
    local extra=()
    "$TCPQ" serve --help | grep -q -- --series-limit && extra=(--series-limit 2000)
    serve_start "${extra[@]}" "$prog"
    local pid=$SERVE_PID
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    # connect() to 1,000 closed ports: each attempt ends in CLOSE with
    # ECONNREFUSED (a reset answers the SYN).
    ip netns exec "$NS" bash -c 'for p in $(seq 20000 20999); do (: </dev/tcp/127.0.0.1/$p) 2>/dev/null; done' || true
    local url="http://127.0.0.1:$PORT/metrics" fmt accept t0 t1 lines bytes times
    for fmt in text openmetrics; do
        accept='text/plain;version=0.0.4'
        [[ $fmt == openmetrics ]] && accept='application/openmetrics-text;version=1.0.0'
        curl -s -H "Accept: $accept" "$url" > "$OUT/serve-scrape.$fmt"
        lines=$(grep -vc '^#' "$OUT/serve-scrape.$fmt")
        bytes=$(wc -c < "$OUT/serve-scrape.$fmt")
        series=$(grep -c '^bench_attempts_a_total{' "$OUT/serve-scrape.$fmt" || true)
        t0=$(cpu_ticks "$pid")
        times=$(for _ in $(seq "$SCRAPES"); do
            curl -s -o /dev/null -H "Accept: $accept" -w '%{time_total}\n' "$url"
        done)
        t1=$(cpu_ticks "$pid")
        local hz
        hz=$(getconf CLK_TCK)
        echo "- $fmt: $lines sample lines ($bytes bytes; bench_attempts_a has $series series); latency median $(echo "$times" | median) s, max $(echo "$times" | sort -g | tail -1) s over $SCRAPES scrapes; tcpq CPU $(awk -v d=$((t1 - t0)) -v n="$SCRAPES" -v hz="$hz" 'BEGIN {printf "%.1f", d * 1000 / hz / n}') ms per scrape (load $(load))"
    done
    echo "- tcpq serve's VmRSS with these 10 x 1,000 series: $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") KiB"
    serve_stop "$pid"
    ip netns del "$NS"
    echo
}

# --- (2) rss over time --------------------------------------------------------
rss() {
    echo "## (2) VmRSS of serve with 10 recipes for $RSS_SECONDS s, scraped every 15 s, under iperf3"
    local dir="$OUT/serve-rss"
    rm -rf "$dir"
    mkdir -p "$dir"
    local r
    for r in zero-window-metrics window-scaling-metrics retransmit-metrics rtt-metrics; do
        cp "$here/recipes/$r.tcpq" "$dir/"
    done
    # Six more, one per probe family iperf3 moves.
    echo 'on tcp_probe hist snd_cwnd by comm as bench_cwnd_segments' > "$dir/a.tcpq"
    echo 'on tcp_sendmsg sum ret by comm as bench_sent_bytes' > "$dir/b.tcpq"
    echo 'on tcp_recvmsg sum ret by comm as bench_read_bytes' > "$dir/c.tcpq"
    echo 'on tcp_state count by newstate as bench_state_changes' > "$dir/d.tcpq"
    echo 'on tcp_rcv_space stats rcv_space as bench_rcv_space' > "$dir/e.tcpq"
    echo 'on tcp_close hist duration as bench_life_seconds' > "$dir/f.tcpq"
    serve_start "$dir"
    local pid=$SERVE_PID
    iperf3 -s -1 -p 5411 > /dev/null 2>&1 &
    local srv=$!
    iperf3 -c 127.0.0.1 -p 5411 -t "$RSS_SECONDS" -b 50M > "$OUT/serve-rss.iperf" 2>&1 &
    local cl=$! start now last=0
    start=$(date +%s)
    echo "| seconds | VmRSS KiB | VmHWM KiB | load |"
    echo "|---|---|---|---|"
    while kill -0 "$cl" 2>/dev/null; do
        now=$(( $(date +%s) - start ))
        curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics"
        if (( now - last >= 30 || now == 0 )); then
            echo "| $now | $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") | $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") | $(load) |"
            last=$now
        fi
        sleep 15
    done
    echo "| $(( $(date +%s) - start )) | $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") | $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") | $(load) |"
    wait "$cl" || true
    wait "$srv" 2>/dev/null || true
    serve_stop "$pid"
    echo
}

# --- (3) the host's cost ------------------------------------------------------
host() {
    echo "## (3) the host's cost: sockperf's message rate with serve's programs attached"
    local bt="$OUT/serve-host.bt"
    # The four shipped metrics recipes, as bpftrace aggregations (every
    # port: the recipes' default).
    cat > "$bt" <<'EOF'
tracepoint:net:net_dev_queue
{
  $skb = (struct sk_buff *)args->skbaddr;
  $th = (struct tcphdr *)($skb->head + $skb->transport_header);
  if ($skb->sk != 0 && $th->window == 0) { @zero[comm] = count(); }
}
tracepoint:tcp:tcp_retransmit_skb { @retrans = count(); }
tracepoint:tcp:tcp_probe { @srtt = hist(args->srtt >> 3); }
tracepoint:sock:inet_sock_set_state
/args->protocol == IPPROTO_TCP && args->oldstate == TCP_SYN_SENT && args->newstate == TCP_ESTABLISHED/
{ @connects = count(); }
EOF
    sockperf sr --tcp -p 5305 > /dev/null 2>&1 &
    local srv=$!
    pids+=("$srv")
    sleep 0.5
    local what pid rates
    for what in nothing tcpq bpftrace; do
        pid=
        case $what in
        tcpq) serve_start zero-window-metrics window-scaling-metrics retransmit-metrics rtt-metrics; pid=$SERVE_PID ;;
        bpftrace)
            "$BPFTRACE" "$bt" > "$OUT/serve-host.bt.out" 2>&1 &
            pid=$!
            pids+=("$pid")
            for _ in $(seq 200); do grep -q Attaching "$OUT/serve-host.bt.out" && break; sleep 0.1; done
            sleep 1
            ;;
        esac
        rates=$(for _ in $(seq "$HOST_RUNS"); do
            sockperf tp --tcp -i 127.0.0.1 -p 5305 -m 64 -t 3 2>&1 | grep -oE 'Message Rate is [0-9]+' | grep -oE '[0-9]+$'
        done)
        [[ -n $pid ]] && serve_stop "$pid"
        echo "- $what: median $(echo "$rates" | median) messages/s (runs: $(echo $rates); load $(load))"
    done
    kill "$srv" 2>/dev/null || true
    echo
}

echo "# tcpq serve benchmarks, $(date -u +%FT%TZ), $(uname -r), $(nproc) CPUs, $("$TCPQ" --version)"
echo
sections=("$@")
[[ ${#sections[@]} == 0 || ${sections[0]} == all ]] && sections=(scrape host rss)
for s in "${sections[@]}"; do "$s"; done
