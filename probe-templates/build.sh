#!/usr/bin/env bash
# Rebuild tcpq's eBPF templates from source with the pinned toolchain.
#
#   probe-templates/build.sh            rebuild and update prebuilt/
#   probe-templates/build.sh --check    rebuild into a scratch dir and fail if
#                                       prebuilt/ differs (what CI runs)
#
# Needs the nightly named in ebpf/rust-toolchain.toml (with rust-src) and
# bpf-linker on PATH; `probe-templates/build.sh --install` installs both.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ebpf="$here/ebpf"
prebuilt="$here/prebuilt"
templates=(tcp_select_window tcp_probe tcp_retransmit tcp_state tcp_reset tcp_drop tcp_sock_event tcp_io)
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' "$ebpf/rust-toolchain.toml")
linker_version=0.13.0

install() {
    rustup toolchain install "$toolchain" --profile minimal --component rust-src,rustfmt,clippy
    # bpf-linker finds the nightly's libLLVM only when run through rustup.
    if ! rustup run "$toolchain" bpf-linker --version 2>/dev/null | grep -q "$linker_version"; then
        # bpf-linker links against an LLVM as new as the nightly's; the
        # nightly ships one.
        local llvm="$HOME/.local/llvm-$toolchain"
        mkdir -p "$llvm/lib"
        ln -sf "$(rustc +"$toolchain" --print sysroot)"/lib/libLLVM.so.* "$llvm/lib/libLLVM.so"
        LLVM_PREFIX="$llvm" cargo +stable install bpf-linker --version "$linker_version" --locked
    fi
}

mode=update
case "${1:-}" in
    --install) install; exit 0 ;;
    --check) mode=check ;;
    "") ;;
    *) echo "usage: $0 [--install|--check]" >&2; exit 2 ;;
esac

# An experiment switch of the sources (benches/quick-step.sh), never shipped.
unset TCPQ_EXPERIMENT_IMMEDIATE TCPQ_EXPERIMENT_DEAD_READ

command -v bpf-linker >/dev/null || { echo "bpf-linker missing: run $0 --install" >&2; exit 1; }

# rustc's symbol hashes depend on the source path, so the sources are built
# from one fixed staging path: the same commit then gives the same bytes in
# any checkout. --check builds there too, never touching prebuilt/.
stage=/tmp/tcpq-template-build
# One build at a time uses the fixed path: a second checkout's build (or
# --check) waits for the first instead of deleting its files under it.
exec 9>"$stage.build-lock"
flock 9
rm -rf "$stage"
mkdir -p "$stage/src"
cp -r "$ebpf" "$stage/src/ebpf"
cp -r "$here/abi" "$stage/src/abi"
rm -rf "$stage/src/ebpf/target"
target="$stage/target"
trap 'rm -rf "$stage"' EXIT
# The objects carry BTF (the verifier needs it to check the templates'
# global functions once each), and BTF names source files: map the
# machine-specific prefixes to fixed ones so that every machine builds the
# same bytes. Cargo appends these to the config's rustflags.
sysroot=$(rustc +"$toolchain" --print sysroot)
remap="target.bpfel-unknown-none.rustflags=[\"--remap-path-prefix=$stage/src=/tcpq\", \"--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo\", \"--remap-path-prefix=$sysroot=/rust\"]"
(cd "$stage/src/ebpf" && CARGO_TARGET_DIR="$target" cargo +"$toolchain" build --release --locked --config "$remap")

# DWARF is only the input of BTF: strip it (a third of the size remains).
objcopy="$sysroot/lib/rustlib/$(rustc +"$toolchain" -vV | sed -n 's/^host: //p')/bin/rust-objcopy"
out="$target/out"
mkdir -p "$out"
for t in "${templates[@]}"; do
    "$objcopy" --strip-debug "$target/bpfel-unknown-none/release/$t" "$out/$t.bpfel.o"
done
(cd "$out" && sha256sum -- *.bpfel.o > SHA256SUMS)
{
    echo "rustc: $(rustc +"$toolchain" --version)"
    echo "bpf-linker: $(rustup run "$toolchain" bpf-linker --version)"
    echo "aya-ebpf: $(sed -n '/^name = "aya-ebpf"$/{n;p}' "$ebpf/Cargo.lock" | sed 's/version = //; s/"//g')"
} > "$out/TOOLCHAIN"

if [ "$mode" = check ]; then
    if diff -u "$prebuilt/SHA256SUMS" "$out/SHA256SUMS" && diff -u "$prebuilt/TOOLCHAIN" "$out/TOOLCHAIN" \
        && (cd "$prebuilt" && sha256sum --quiet -c SHA256SUMS); then
        echo "prebuilt templates match a fresh build"
    else
        echo "prebuilt templates are stale: run probe-templates/build.sh and commit prebuilt/" >&2
        exit 1
    fi
else
    cp "$out"/*.bpfel.o "$out/SHA256SUMS" "$out/TOOLCHAIN" "$prebuilt/"
    cat "$prebuilt/SHA256SUMS"
fi
