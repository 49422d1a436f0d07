#!/usr/bin/env bash
# The HTTP/2 benchmark's peers, each in its own virtual environment at a
# pinned version (the newest release, each one's fastest configuration is
# chosen in run.py): bench/.peers/<name>/.  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
peer() {
    local name=$1; shift
    if [ ! -x ".peers/$name/bin/python" ]; then
        "$PY" -m venv ".peers/$name"
    fi
    ".peers/$name/bin/python" -m pip install -q "$@"
}
peer granian "granian==2.8.7"
peer gunicorn "gunicorn[http2]==27.0.1" "gevent==26.9.0" packaging
# hypercorn's fastest here: uvloop 0.23.0 (h2c -c10 -m10, three alternating
# runs: 3.0-4.1k req/s against 2.1-2.9k with uvloop 0.22.1, and 2.6-2.8k
# with the asyncio worker)
peer hypercorn "hypercorn==0.18.0" "uvloop==0.23.0"
command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client; }
echo "peers ready in bench/.peers/"
