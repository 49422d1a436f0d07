#!/usr/bin/env bash
# The HTTP/1.1 benchmark's peers, each in its own virtual environment at a
# pinned version: bench/.peers/http1/<name>/.  The pins are each peer's
# fastest release on a 2-core x86-64 machine with CPython 3.11 (uvloop
# 0.22.1, not 0.23.0: 0.23.0 served the same ASGI app 20-35% slower there).
# run.py prints every version it finds.  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
peer() {
    local name=$1; shift
    if [ ! -x ".peers/http1/$name/bin/python" ]; then
        mkdir -p .peers/http1
        "$PY" -m venv ".peers/http1/$name"
    fi
    ".peers/http1/$name/bin/python" -m pip install -q "$@"
}
apt_need() {      # apt_need FILE-OR-BINARY PACKAGE
    if ! command -v "$1" >/dev/null 2>&1 && [ ! -e "$1" ]; then
        apt-get update -qq && apt-get install -y -qq "$2"
    fi
}
apt_need wrk wrk
# socketify.py ships a prebuilt libsocketify_linux_amd64.so linked against
# the system's libuv (libuv.so.1) and zlib.
apt_need /usr/lib/x86_64-linux-gnu/libuv.so.1 libuv1
peer uvicorn "uvicorn==0.54.0" "httptools==0.9.0" "uvloop==0.22.1"
peer granian "granian==2.8.7" "uvloop==0.22.1"
peer socketify "socketify==0.0.31"
peer gunicorn "gunicorn==27.0.1" "gevent==26.9.0" packaging   # the gevent worker imports it
# socketify loads its shared library at import: fail here, not mid-benchmark.
.peers/http1/socketify/bin/python -c "import socketify" \
    || { echo "socketify.py does not load on this machine (see bench/README.md)" >&2; exit 1; }
echo "peers ready in bench/.peers/http1/"
