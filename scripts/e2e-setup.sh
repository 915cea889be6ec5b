#!/bin/sh
# Installs what the browser test (tests/e2e_web.rs) needs, if it is missing:
#   - Chromium from Debian/Ubuntu (`apt-get install chromium`, ~25 s; needs root or
#     password-less sudo), or the one named by $CHROMIUM;
#   - Python Playwright from PyPI (~7 s) into the per-user cache, driving that Chromium
#     through `executable_path` (no `playwright install`: no browser download).
# Idempotent: a second run takes well under a second. On success it prints
#   CHROMIUM=/path  PYTHON=/path  PYTHONPATH=/path
# one per line on stdout and exits 0; otherwise it says why on stderr and exits 3.
# PHOTOTAG_E2E_NO_INSTALL=1 only looks, never installs.
set -eu

PLAYWRIGHT_VERSION=1.65.2
CACHE=${PHOTOTAG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phototag}
PYDIR="$CACHE/e2e-python/playwright-$PLAYWRIGHT_VERSION"
PYTHON=${PYTHON:-python3}

say() { echo "e2e-setup: $*" >&2; }
fail() { say "$*"; exit 3; }

find_chromium() {
    for c in ${CHROMIUM:-} chromium chromium-browser google-chrome; do
        p=$(command -v "$c" 2>/dev/null) || continue
        # Ubuntu's chromium-browser may be a snap stub that only prints a message.
        if "$p" --version >/dev/null 2>&1; then echo "$p"; return 0; fi
    done
    return 1
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
    else return 1
    fi
}

CHROME=$(find_chromium) || {
    [ "${PHOTOTAG_E2E_NO_INSTALL:-}" = 1 ] && fail "no Chromium (and PHOTOTAG_E2E_NO_INSTALL=1)"
    command -v apt-get >/dev/null 2>&1 || fail "no Chromium, and no apt-get to install it: install chromium or set CHROMIUM=/path/to/chrome"
    say "installing Chromium with apt-get (about 25 s)"
    as_root sh -c 'export DEBIAN_FRONTEND=noninteractive;
        (apt-get install -y -qq --no-install-recommends chromium ||
         (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium))' >&2 ||
        fail "cannot install Chromium (needs root or password-less sudo, and an apt mirror): apt-get install chromium"
    CHROME=$(find_chromium) || fail "Chromium was installed but does not run"
}

have_playwright() {
    PYTHONPATH="$PYDIR" "$PYTHON" -c 'import playwright.sync_api' >/dev/null 2>&1
}

if ! have_playwright; then
    [ "${PHOTOTAG_E2E_NO_INSTALL:-}" = 1 ] && fail "no Python Playwright in $PYDIR (and PHOTOTAG_E2E_NO_INSTALL=1)"
    command -v "$PYTHON" >/dev/null 2>&1 || fail "no $PYTHON to run Playwright"
    say "installing Python Playwright $PLAYWRIGHT_VERSION from PyPI into $PYDIR"
    tmp="$PYDIR.tmp.$$"
    rm -rf "$tmp"
    PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install -q --disable-pip-version-check --no-warn-script-location \
        --target "$tmp" "playwright==$PLAYWRIGHT_VERSION" >&2 ||
        { rm -rf "$tmp"; fail "cannot install Playwright from PyPI (pip install playwright==$PLAYWRIGHT_VERSION)"; }
    rm -rf "$PYDIR"
    mkdir -p "$(dirname "$PYDIR")"
    mv "$tmp" "$PYDIR"
    have_playwright || fail "Playwright was installed in $PYDIR but cannot be imported"
fi

echo "CHROMIUM=$CHROME"
echo "PYTHON=$(command -v "$PYTHON")"
echo "PYTHONPATH=$PYDIR"
