#!/usr/bin/env bash
# tcpq attached for a long time under steady loopback load: VmRSS sampled
# every $EVERY seconds. A benchmark, not a test; run as root.
#
#   benches/longrun.sh [SECONDS]     (default 600)
#
# One tcpq process runs two clauses: one printing every tcp_probe event
# (stdout to /dev/null) and one `count by comm`. Load: iperf3 at 50 Mbit/s
# over loopback for the same time. Output: $OUT/longrun.{rss,err,iperf}.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
TCPQ=${TCPQ:-$here/target/release/tcpq}
OUT=${OUT:-$here/target/bench}
SECS=${1:-600}
EVERY=${EVERY:-30}
PORT=${PORT:-5401}
mkdir -p "$OUT"
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }

prog="$OUT/longrun.tcpq"
cat > "$prog" <<P
on tcp_probe where dport == $PORT print pid, comm, snd_cwnd, srtt
on tcp_probe count by comm
P
iperf3 -s -1 -p "$PORT" > /dev/null 2>&1 &
srv=$!
"$TCPQ" "$prog" > /dev/null 2> "$OUT/longrun.err" &
tp=$!
for _ in $(seq 200); do grep -q attached "$OUT/longrun.err" && break; sleep 0.1; done
iperf3 -c 127.0.0.1 -p "$PORT" -t "$SECS" -b 50M > "$OUT/longrun.iperf" 2>&1 &
cl=$!
: > "$OUT/longrun.rss"
start=$(date +%s)
while kill -0 $cl 2>/dev/null; do
    echo "$(( $(date +%s) - start )) $(awk '/VmRSS/ {print $2}' /proc/$tp/status) $(awk '/VmHWM/ {print $2}' /proc/$tp/status) $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/longrun.rss"
    sleep "$EVERY"
done
wait $cl || true
echo "$(( $(date +%s) - start )) $(awk '/VmRSS/ {print $2}' /proc/$tp/status) $(awk '/VmHWM/ {print $2}' /proc/$tp/status) $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/longrun.rss"
kill -INT $tp; wait $tp || true
wait $srv 2>/dev/null || true
echo "# seconds VmRSS_KiB VmHWM_KiB load1"
cat "$OUT/longrun.rss"
awk 'NR==1 {s=$2} {if ($2>m) m=$2; e=$2} END {printf "VmRSS start %d KiB, max %d KiB, end %d KiB\n", s, m, e}' "$OUT/longrun.rss"
echo "tcpq stderr:"; cat "$OUT/longrun.err"
tail -4 "$OUT/longrun.iperf"
