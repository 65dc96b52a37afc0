#!/usr/bin/env bash
# Build tcpq's release artifacts, reproducibly: the static binary (musl;
# one file, the eBPF templates and recipes embedded, no shared library),
# its man pages and shell completions (`tcpq __generate`), and with --deb
# the Debian package (cargo-deb, [package.metadata.deb] in Cargo.toml).
#
#   scripts/release.sh [--target TRIPLE]... [--verify] [--deb] [--out DIR]
#
# --target   x86_64-unknown-linux-musl (the default) or
#            aarch64-unknown-linux-musl (linked by rust-lld, which ships
#            with the toolchain; no cross gcc needed). Repeatable.
# --verify   build each target a second time in a fresh target directory
#            and fail unless the two binaries are the same bytes.
# --deb      also build target/dist/tcpq_VERSION-1_amd64.deb (needs
#            cargo-deb; the x86_64 binary).
# Prints each artifact with its size and sha256 (also in DIR/SHA256SUMS).
#
# Reproducible: paths are remapped (--remap-path-prefix: the checkout to
# /build/tcpq, CARGO_HOME to /cargo), symbols are stripped, the version
# comes from the commit (build.rs), and SOURCE_DATE_EPOCH (the commit's
# time unless set) dates the package's files. Cargo.lock is used as is
# (--locked). Same commit, same toolchain: same bytes.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
OUT=$REPO/target/dist
TARGETS=()
VERIFY=0
DEB=0
while [ $# -gt 0 ]; do
    case $1 in
        --target) TARGETS+=("$2"); shift 2 ;;
        --verify) VERIFY=1; shift ;;
        --deb) DEB=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "release.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "${#TARGETS[@]}" -gt 0 ] || TARGETS=(x86_64-unknown-linux-musl)

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
CARGO_HOME_DIR=${CARGO_HOME:-$HOME/.cargo}
# Nothing from the caller's environment may change the flags.
unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS

# build TARGET TARGET_DIR: the stripped static release binary.
build() {
    local target=$1 dir=$2 flags
    rustup target list --installed | grep -qx "$target" || rustup target add "$target" >&2
    flags=(--remap-path-prefix="$REPO=/build/tcpq" --remap-path-prefix="$CARGO_HOME_DIR=/cargo")
    case $target in
        x86_64-unknown-linux-musl) ;;
        aarch64-unknown-linux-musl) flags+=(-Clinker=rust-lld -Clinker-flavor=ld.lld) ;;
        *) echo "release.sh: no recipe for target $target" >&2; exit 2 ;;
    esac
    # CARGO_ENCODED_RUSTFLAGS (0x1f between flags) wins over every other
    # source of flags; with --target it applies to the target only.
    CARGO_ENCODED_RUSTFLAGS=$(IFS=$'\x1f'; echo "${flags[*]}") \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
        cargo build --release --locked --quiet --target "$target" --target-dir "$dir"
    echo "$dir/$target/release/tcpq"
}

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
mkdir -p "$OUT"
: >"$OUT/SHA256SUMS"
record() {
    local f=$1
    printf '%s  %10d bytes  sha256 %s\n' "${f#"$REPO"/}" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
    (cd "$(dirname "$f")" && sha256sum "$(basename "$f")") >>"$OUT/SHA256SUMS"
}

for target in "${TARGETS[@]}"; do
    t0=$(date +%s)
    bin=$(build "$target" "$REPO/target")
    echo "release.sh: built $target in $(($(date +%s) - t0)) s" >&2
    if [ "$VERIFY" = 1 ]; then
        again=$REPO/target/reproduce
        rm -rf "$again"
        t0=$(date +%s)
        bin2=$(build "$target" "$again")
        a=$(sha256sum <"$bin" | cut -d' ' -f1)
        b=$(sha256sum <"$bin2" | cut -d' ' -f1)
        echo "release.sh: built $target again in $again in $(($(date +%s) - t0)) s" >&2
        if [ "$a" != "$b" ]; then
            echo "release.sh: NOT reproducible: $bin is $a, $bin2 is $b" >&2
            exit 1
        fi
        echo "release.sh: reproducible: both builds are sha256 $a" >&2
        rm -rf "$again"
    fi
    cp "$bin" "$OUT/tcpq-$VERSION-$target"
    record "$OUT/tcpq-$VERSION-$target"
done

# Man pages and completions, written by the x86_64 binary (this host's).
host_bin=$OUT/tcpq-$VERSION-x86_64-unknown-linux-musl
[ -x "$host_bin" ] || host_bin=$(build x86_64-unknown-linux-musl "$REPO/target")
rm -rf "$OUT/generated"
"$host_bin" __generate "$OUT/generated" >/dev/null

if [ "$DEB" = 1 ]; then
    [ -x "$REPO/target/x86_64-unknown-linux-musl/release/tcpq" ] ||
        build x86_64-unknown-linux-musl "$REPO/target" >/dev/null
    # cargo-deb packages the binary built above (--no-build) and the
    # generated pages and scripts (assets in Cargo.toml, which name
    # target/dist/generated); it gzips the man pages itself. --no-strip:
    # the binary is stripped already, and must stay the released bytes.
    rm -f "$OUT"/tcpq_*.deb
    cargo deb --no-build --no-strip --locked --quiet --target x86_64-unknown-linux-musl --output "$OUT" >/dev/null
    record "$(ls "$OUT"/tcpq_*.deb)"
fi
