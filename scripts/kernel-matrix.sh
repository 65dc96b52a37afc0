#!/usr/bin/env bash
# The kernel matrix: run the same tcpq scenario (scripts/kernel-matrix/
# scenario.sh: `tcpq doctor`, then one counted program per probe over a
# deterministic loopback exchange) on this host and on every kernel in
# KERNELS, booted under qemu (TCG) from a small busybox initramfs, and
# compare: per probe, the strategy on each kernel and whether the answers
# agree. Exits 1 when an answer differs or a guest does not report.
#
#   scripts/kernel-matrix.sh [--out DIR] [--record DIR]
#
# --record DIR writes each kernel's `features` (from `tcpq doctor --format
# json`) to DIR/<name>.json (tests/fixtures/kernels/ holds the committed
# ones). Run as root. Add a kernel: see docs/kernels.md.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD

# name:Debian package whose vmlinuz is booted.
KERNELS=(
    "debian-6.1:linux-image-6.1.0-47-cloud-amd64-unsigned"
)
CACHE=${TCPQ_MATRIX_CACHE:-/var/cache/tcpq-matrix}
OUT=$REPO/target/kernel-matrix
RECORD=
GUEST_TIMEOUT=${TCPQ_MATRIX_TIMEOUT:-300}
while [ $# -gt 0 ]; do
    case $1 in
        --out) OUT=$2; shift 2 ;;
        --record) RECORD=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "kernel-matrix.sh must run as root" >&2; exit 1; }

missing=()
for cp in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static cpio:cpio; do
    command -v "${cp%%:*}" >/dev/null 2>&1 || missing+=("${cp#*:}")
done
# busybox must be the static one: the guest has no libc for it.
if command -v busybox >/dev/null && ldd "$(command -v busybox)" >/dev/null 2>&1; then
    missing+=(busybox-static)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

T0=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT" "$CACHE"
# The static binary, as released (scripts/release.sh: musl, no shared
# library), on the host and in every guest: the artifact users get runs
# under each kernel and a userland that is not the build machine's (the
# guest has busybox and nothing else). TCPQ_MATRIX_BIN runs another.
if [ -n "${TCPQ_MATRIX_BIN:-}" ]; then
    TCPQ=$TCPQ_MATRIX_BIN
else
    bash scripts/release.sh >/dev/null
    TCPQ=$(ls "$REPO"/target/dist/tcpq-*-x86_64-unknown-linux-musl | head -n 1)
fi
rustup target list --installed | grep -qx x86_64-unknown-linux-musl ||
    rustup target add x86_64-unknown-linux-musl
rustc -O --edition 2021 --target x86_64-unknown-linux-musl \
    scripts/kernel-matrix/tcpgen.rs -o "$OUT/tcpgen"
GEN=$OUT/tcpgen
echo "== tcpq: $TCPQ ($("$TCPQ" --version))"

# The host run, traffic in a throwaway netns (tcpq itself sees every netns).
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
NS=tcpq-m-$$
ip netns add "$NS"
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
ip netns exec "$NS" ip link set lo up
echo "== host $(uname -r)"
sh scripts/kernel-matrix/scenario.sh "$TCPQ" "$GEN" ip netns exec "$NS" >"$OUT/host.log" 2>&1
ip netns del "$NS"

# An initramfs: static busybox, tcpq and tcpgen (a binary with shared
# libraries gets them copied in), the scenario, and an init that mounts
# what tcpq needs.
build_initramfs() {
    local root=$1
    rm -rf "$root"
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc}
    cp "$(command -v busybox)" "$root/bin/busybox"
    cp "$TCPQ" "$root/bin/tcpq"
    cp "$GEN" "$root/bin/tcpgen"
    cp scripts/kernel-matrix/scenario.sh "$root/scenario.sh"
    # sock_diag for TCP (`tcpq sockets`) is a module in Debian's kernels,
    # which udev/modprobe load on first use; the guest has neither, so init
    # loads them (inet_diag first).
    mkdir -p "$root/modules"
    for m in inet_diag tcp_diag; do
        f=$(find "$kdir/lib/modules" -name "$m.ko*" | head -n 1)
        if [ -n "$f" ]; then cp "$f" "$root/modules/$m.ko"; fi
    done
    for lib in $(ldd "$TCPQ" "$GEN" 2>/dev/null | awk '/=>/ && $3 ~ /^\// {print $3} /^\t\// {print $1}' | sort -u); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    mknod "$root/dev/console" c 5 1
    cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t tracefs tracefs /sys/kernel/tracing
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ip link set lo up
for m in inet_diag tcp_diag; do [ -f /modules/$m.ko ] && insmod /modules/$m.ko; done
echo "@@TCPQ guest-up $(uname -r)"
sh /scenario.sh /bin/tcpq /bin/tcpgen
echo "@@TCPQ guest-done"
poweroff -f
INIT
    chmod +x "$root/init"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$2"
}

for entry in "${KERNELS[@]}"; do
    name=${entry%%:*}
    pkg=${entry#*:}
    deb=$(ls "$CACHE"/"${pkg}"_*.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$deb" ]; then
        (cd "$CACHE" && apt-get download "$pkg")
        deb=$(ls "$CACHE"/"${pkg}"_*.deb | head -n 1)
    fi
    kdir=$CACHE/$name
    if [ ! -d "$kdir" ]; then
        dpkg-deb -x "$deb" "$kdir.tmp" && mv "$kdir.tmp" "$kdir"
    fi
    vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -n 1)
    build_initramfs "$OUT/$name.root" "$OUT/$name.initramfs.gz"
    echo "== $name ($(basename "$vmlinuz")) under qemu TCG"
    t=$(date +%s)
    timeout "$GUEST_TIMEOUT" qemu-system-x86_64 -nographic -no-reboot -accel tcg -cpu max \
        -m 1024 -smp 2 -kernel "$vmlinuz" -initrd "$OUT/$name.initramfs.gz" \
        -append "console=ttyS0 panic=-1 quiet" </dev/null >"$OUT/$name.log" 2>&1 || true
    tr -d '\r' <"$OUT/$name.log" >"$OUT/$name.log.tmp" && mv "$OUT/$name.log.tmp" "$OUT/$name.log"
    echo "   booted, ran and powered off in $(($(date +%s) - t)) s"
    rm -rf "$OUT/$name.root"
done

# Compare and print the table.
python3 - "$OUT" "${RECORD:-}" scripts/kernel-matrix/known-gaps host "${KERNELS[@]%%:*}" <<'PY'
import json, re, sys, os
out, record, gaps_file, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
# `KERNEL PROBE reason words`: a probe known not to run on a kernel (the
# doctor's reason must contain the words); anything else that differs fails.
gaps = {}
for line in open(gaps_file):
    line = line.split("#", 1)[0].strip()
    if line:
        k, p, words = line.split(None, 2)
        gaps[(k, p)] = words
runs, doctors, errs = {}, {}, {}
for n in names:
    log = open(os.path.join(out, n + ".log"), errors="replace").read()
    m = re.search(r"@@TCPQ doctor-begin\n(.*?)\n@@TCPQ doctor-end", log, re.S)
    try:
        doctors[n] = json.loads(m.group(1)) if m else None
    except ValueError:  # the doctor printed no JSON (see the log)
        doctors[n] = None
    runs[n] = {}
    for r in re.finditer(r"^@@TCPQ run (\S+) ms=(\d+) rc=(\d+) attach=(\S*) out=(.*)$", log, re.M):
        runs[n][r.group(1)] = dict(ms=int(r.group(2)), rc=int(r.group(3)), attach=r.group(4), out=r.group(5))
    errs[n] = [l for l in log.splitlines() if l.startswith("@@TCPQ stderr")]
    if record and doctors[n]:
        name = n if n != "host" else "host-" + doctors[n]["kernel"]["release"].split("-")[0].rsplit(".", 1)[0]
        with open(os.path.join(record, name + ".json"), "w") as f:
            json.dump(doctors[n]["features"], f, indent=2, sort_keys=True)
            f.write("\n")
ok = True
kern = lambda n: doctors[n]["kernel"]["release"] if doctors[n] else "(no report)"
rows = ["| probe | " + " | ".join(f"{n} ({kern(n)})" for n in names) + " | answers agree |",
        "|---" * (len(names) + 2) + "|"]
probes = sorted({p["name"] for d in doctors.values() if d for p in d["probes"]})
for p in probes:
    cells, outs = [], []
    for n in names:
        d = doctors[n]
        v = next((x for x in d["probes"] if x["name"] == p), None) if d else None
        r = runs[n].get(p)
        strat = (v["strategy"] if v["available"] else "cannot run: " + v["reason"]) if v else "?"
        ans = r["out"].rstrip(";") if r else "(no run)"
        outs.append(ans if r and r["rc"] == 0 else None)
        cells.append(f"{strat}: `{ans or '(nothing)'}`")
    known = []
    for n in names:
        d = doctors[n]
        v = next((x for x in d["probes"] if x["name"] == p), None) if d else None
        if v and not v["available"] and (n, p) in gaps and gaps[(n, p)] in v["reason"]:
            known.append(n)
    ran = [o for n, o in zip(names, outs) if n not in known]
    agree = all(o is not None for o in ran) and len(set(ran)) == 1
    ok &= agree
    verdict = "yes" if agree else "NO"
    if agree and known:
        verdict += " (known gap on " + ", ".join(known) + ")"
    rows.append(f"| {p} | " + " | ".join(cells) + f" | {verdict} |")
print("\n".join(rows))

# Forced strategies (PROBE@STRATEGY runs): where the kernel offers the
# strategy it must run and agree with the probe's answer on every kernel;
# where it does not, it must fail. Every strategy of every probe must have
# run somewhere, by choice or forced.
def strategies_of(n, p):
    d = doctors[n]
    v = next((x for x in d["probes"] if x["name"] == p), None) if d else None
    return {s["name"]: s for s in (v or {}).get("strategies", [])}, v
answer = {}
for p in probes:
    outs = [runs[n][p]["out"].rstrip(";") for n in names if p in runs[n] and runs[n][p]["rc"] == 0]
    answer[p] = outs[0] if outs and len(set(outs)) == 1 else None
forced = sorted({k for n in names for k in runs[n] if "@" in k})
rows = ["| forced | " + " | ".join(names) + " | agrees |", "|---" * (len(names) + 2) + "|"]
ran_somewhere = set()
for n in names:
    for p in probes:
        s, v = strategies_of(n, p)
        if v and v["available"] and p in runs[n] and runs[n][p]["rc"] == 0:
            ran_somewhere.add((p, v["strategy"]))
for k in forced:
    p, st = k.split("@", 1)
    cells, good = [], True
    for n in names:
        r = runs[n].get(k)
        s, _ = strategies_of(n, p)
        offered = s.get(st, {}).get("available", False)
        if r is None:
            cells.append("(no run)"); good = False
        elif not offered:
            cells.append("not offered: " + "; ".join(s.get(st, {}).get("reasons", ["?"]))[:80])
            good &= r["rc"] != 0
        else:
            ans = r["out"].rstrip(";")
            cells.append(f"`{ans or '(nothing)'}`" + ("" if r["rc"] == 0 else f" rc={r['rc']}"))
            ok_here = r["rc"] == 0 and ans == answer.get(p)
            good &= ok_here
            if ok_here:
                ran_somewhere.add((p, st))
    ok &= good
    rows.append(f"| {k} | " + " | ".join(cells) + f" | {'yes' if good else 'NO'} |")
print()
print("\n".join(rows))
# Named runs that are neither a probe nor forced (e.g. tcp_drop_by_name: a
# reason named in the program, bound from each kernel's own BTF): every
# kernel runs them and gives the same answer, which counted something
# (a run named *_loads only proves the program loads and attaches: it
# must succeed everywhere with the same answer, which may be zero).
extra = sorted({k for n in names for k in runs[n] if "@" not in k and k not in probes})
rows = ["| also | " + " | ".join(names) + " | agrees |", "|---" * (len(names) + 2) + "|"]
for k in extra:
    outs = [runs[n][k]["out"].rstrip(";") if k in runs[n] and runs[n][k]["rc"] == 0 else None for n in names]
    counted = k.endswith("_loads") or all(o != '{"count":0}' for o in outs)
    # A *_loads run may print nothing (the one-liner on an idle machine);
    # any other must have an answer.
    good = all(o is not None and (o or k.endswith("_loads")) for o in outs) \
        and counted and len(set(outs)) == 1
    ok &= good
    cells = ["(failed)" if o is None else f"`{o}`" if o else "(nothing)" for o in outs]
    rows.append(f"| {k} | " + " | ".join(cells) + f" | {'yes' if good else 'NO'} |")
print()
print("\n".join(rows))
never = sorted({(p, st) for n in names for p in probes for st in strategies_of(n, p)[0]} - ran_somewhere)
for p, st in never:
    print(f"strategy {st} of {p} ran on no kernel of the matrix"); ok = False
for n in names:
    d = doctors[n]
    if not d:
        print(f"\n{n}: no doctor report (see {out}/{n}.log)"); ok = False; continue
    f = d["features"]
    caps = ", ".join(f"{k}={'yes' if v['ok'] else 'no'}" for k, v in sorted(f["attach_types"].items()))
    funcs = ", ".join(f"{k}(kallsyms={'y' if v['kallsyms'] else 'n'},btf={'y' if v['btf'] else 'n'})" for k, v in sorted(f["functions"].items()))
    absent = [k for k, v in sorted(f["tracepoints"].items()) if not v]
    print(f"\n{n} ({kern(n)}): doctor {d['elapsed_ms']} ms; attach: {caps}")
    print(f"  functions: {funcs}")
    print(f"  absent tracepoints: {', '.join(absent) or 'none'}; owner gaps: {'; '.join(d['owner_tracking_gaps']) or 'none'}")
    for u in (d.get("offsets") or {}).get("unresolved", []): print(f"  unresolved: {u}")
    for u in (d.get("offsets") or {}).get("notes", []): print(f"  note: {u}")
    for e in errs[n]: print("  " + e)
    print("  run ms: " + ", ".join(f"{k}={v['ms']}" for k, v in sorted(runs[n].items())))
sys.exit(0 if ok else 1)
PY
status=$?
echo "kernel matrix: $(($(date +%s) - T0)) s wall"
exit $status
