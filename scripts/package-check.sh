#!/usr/bin/env bash
# Check what scripts/release.sh made (CI runs this after it, as root):
#  1. the static binary is static (no interpreter, no shared library) and,
#     on this host, runs `tcpq doctor` and the README's one-liner;
#  2. every man page renders with groff -ww and man -l without a warning;
#  3. lintian passes the .deb (each tag it still sees is overridden, with
#     the reason, in debian/tcpq.lintian-overrides);
#  4. dpkg -i installs it: /usr/sbin/tcpq runs a recipe by name, finds its
#     man page, the installed bash completion completes, the recipes
#     under /usr/share/tcpq/recipes are the built-in ones; dpkg -r and
#     dpkg -P leave none of its files behind.
#
#   scripts/package-check.sh [DIST_DIR]      (default target/dist)
set -euo pipefail

cd "$(dirname "$0")/.."
DIST=${1:-target/dist}
[ "$(id -u)" -eq 0 ] || { echo "package-check.sh must run as root (dpkg, eBPF)" >&2; exit 1; }
fail() { echo "package-check: FAIL: $*" >&2; exit 1; }
T0=$(date +%s)

bin=$(ls "$DIST"/tcpq-*-x86_64-unknown-linux-musl | head -n 1)
deb=$(ls "$DIST"/tcpq_*_amd64.deb | head -n 1)

# 1. Static: no PT_INTERP, no DT_NEEDED (static-pie: file says
# "static-pie linked", glibc's ldd "statically linked").
grep -q INTERP <<<"$(readelf -lW "$bin")" && fail "$bin has a program interpreter"
grep -q NEEDED <<<"$(readelf -dW "$bin")" && fail "$bin needs shared libraries"
file -b "$bin" | grep -Eq 'static(-pie)? linked' || fail "file(1) says: $(file -b "$bin")"
ldd "$bin" 2>&1 | grep -Eq 'statically linked|not a dynamic executable' || fail "ldd says: $(ldd "$bin" 2>&1)"
echo "static: $(file -b "$bin" | cut -d, -f1-2,4); ldd: $(ldd "$bin" 2>&1 | tr -d '\t')"
"$bin" --version | grep -Eq '^tcpq [0-9.]+ \([0-9a-f]{12}' || fail "--version: $("$bin" --version)"
"$bin" doctor >/dev/null || fail "the static binary's doctor failed"
out=$("$bin" -e 'on tcp_select_window where win == 0 print pid, comm' --duration 1s 2>&1) ||
    fail "the one-liner failed: $out"
grep -q 'attached' <<<"$out" || fail "the one-liner did not attach: $out"
echo "static binary on $(uname -r): doctor ok, one-liner attached and exited 0"

# 2. Man pages: no warning from groff (-ww: all of them) or man.
gen=$DIST/generated
n=0
for page in "$gen"/man/*.[78]; do
    err=$(groff -ww -man -Tutf8 "$page" 2>&1 >/dev/null)
    [ -z "$err" ] || fail "groff -ww $page: $err"
    err=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    [ -z "$err" ] || fail "man -l $page: $err"
    n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "only $n man pages in $gen/man"
echo "man: $n pages render without warnings"

# 3. lintian, every tag (pedantic and info too); overrides are explained.
if ! tags=$(lintian --pedantic -I --fail-on error,warning,info,pedantic "$deb" 2>&1); then
    fail "lintian $deb: $(echo "$tags" | grep -v 'root privileges')"
fi
echo "lintian: clean ($(grep -c '^tcpq:' debian/tcpq.lintian-overrides) tags overridden, each with its reason)"

# 4. Install, use, remove.
if dpkg -s tcpq >/dev/null 2>&1; then dpkg -P tcpq >/dev/null; fi
dpkg -i "$deb" >/dev/null
# A check that fails must not leave the package installed.
trap 'dpkg -P tcpq >/dev/null 2>&1 || true' EXIT
files=$(dpkg -L tcpq)
for f in /usr/sbin/tcpq /usr/share/man/man8/tcpq.8.gz /usr/share/man/man8/tcpq-doctor.8.gz \
         /usr/share/man/man7/tcpq-language.7.gz /usr/share/bash-completion/completions/tcpq \
         /usr/share/zsh/vendor-completions/_tcpq /usr/share/fish/vendor_completions.d/tcpq.fish \
         /usr/share/tcpq/recipes/zero-window.tcpq /usr/share/doc/tcpq/copyright \
         /usr/share/doc/tcpq/changelog.Debian.gz; do
    # (a here-string: with pipefail, `echo | grep -q` fails when grep
    # quits before echo has written everything)
    grep -qxF "$f" <<<"$files" || fail "the package has no $f"
    [ -f "$f" ] || fail "$f is not installed"
done
cmp -s /usr/sbin/tcpq "$bin" || fail "/usr/sbin/tcpq is not the release binary"
for r in recipes/*.tcpq; do
    cmp -s "$r" "/usr/share/tcpq/recipes/$(basename "$r")" || fail "installed $r differs"
done
[ "$(ls /usr/share/tcpq/recipes | wc -l)" = "$(ls recipes/*.tcpq | wc -l)" ] || fail "recipe count"
[ "$(man -w tcpq)" = /usr/share/man/man8/tcpq.8.gz ] || fail "man -w tcpq: $(man -w tcpq)"
[ "$(man -w tcpq-language)" = /usr/share/man/man7/tcpq-language.7.gz ] || fail "man -w tcpq-language"
grep -q -- '--param port' <<<"$(/usr/sbin/tcpq zero-window --help)" || fail "tcpq zero-window --help"
out=$(/usr/sbin/tcpq zero-window --duration 1s 2>&1) || fail "tcpq zero-window: $out"
grep -q attached <<<"$out" || fail "tcpq zero-window did not attach: $out"
# A recipe file runs by path (the name runs the built-in one).
/usr/sbin/tcpq /usr/share/tcpq/recipes/tcplife.tcpq --check >/dev/null || fail "a recipe by path"
# The installed bash completion, as bash-completion loads it.
got=$(PATH=/usr/sbin:$PATH bash -c '
    source /usr/share/bash-completion/completions/tcpq
    COMP_WORDS=(tcpq zero-window-m); COMP_CWORD=1; COMP_LINE="tcpq zero-window-m"; COMP_POINT=${#COMP_LINE}
    _clap_complete_tcpq tcpq zero-window-m tcpq
    printf "%s\n" "${COMPREPLY[@]}"')
[ "$got" = zero-window-metrics ] || fail "installed bash completion of \`tcpq zero-window-m\`: '$got'"
echo "installed: /usr/sbin/tcpq ran zero-window by name, man -w finds the pages, bash completes"

dpkg -r tcpq >/dev/null
# Purge what -r keeps (conffiles: it has none, and is then gone already).
if dpkg -s tcpq >/dev/null 2>&1; then dpkg -P tcpq >/dev/null; fi
dpkg -s tcpq >/dev/null 2>&1 && fail "tcpq is still known to dpkg"
left=()
while read -r f; do
    if [ -f "$f" ] || [ -L "$f" ]; then left+=("$f"); fi
done <<<"$files"
for d in /usr/share/tcpq /usr/share/doc/tcpq; do [ -e "$d" ] && left+=("$d"); done
[ "${#left[@]}" -eq 0 ] || fail "left after dpkg -r/-P: ${left[*]}"
echo "removed: none of its $(echo "$files" | wc -l) paths' files are left"
echo "package-check: ok in $(($(date +%s) - T0)) s"
