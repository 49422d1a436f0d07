#!/usr/bin/env bash
# Create .venv/ and install the kernel, every plugin (editable) and, with
# --tests, the test tools and the system packages the tests need.
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WITH_TESTS=0
[ "${1:-}" = "--tests" ] && WITH_TESTS=1

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
fi
VPIP=".venv/bin/python -m pip"

# Install the kernel and the plugins; re-run only when a pyproject changed.
stamp=.venv/.kore-installed
sum=$(cat pyproject.toml core/pyproject.toml plugins/*/pyproject.toml \
      tests/requirements.txt 2>/dev/null | sha1sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ] || [ ! -x .venv/bin/korectl ]; then
    echo "setup: installing kore-core and plugins into .venv"
    $VPIP install -q --upgrade pip
    args=(-e ./core)
    for p in plugins/*/; do args+=(-e "./$p"); done
    $VPIP install -q "${args[@]}" -r tests/requirements.txt
    echo "$sum" > "$stamp"
fi

apt_install() {
    # apt_install binary package [binary package ...]
    local missing=()
    while [ $# -gt 0 ]; do
        command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || missing+=("$2")
        shift 2
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
        echo "setup: need system packages ${missing[*]} (run as root or install them)" >&2
        return 1
    fi
    local SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
    echo "setup: apt-get install ${missing[*]}"
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

if [ $WITH_TESTS = 1 ]; then
    # Each plugin lists what its tests need as "binary debian-package" lines.
    pairs=(curl curl)
    for f in tests/system-packages.txt plugins/*/system-packages.txt; do
        [ -f "$f" ] || continue
        while read -r bin pkg; do
            [ -z "$bin" ] || [ "${bin:0:1}" = "#" ] && continue
            pairs+=("$bin" "$pkg")
        done < "$f"
    done
    apt_install "${pairs[@]}"
    for hook in plugins/*/setup-tests.sh; do
        [ -f "$hook" ] && bash "$hook" "$ROOT"
    done
fi
exit 0
