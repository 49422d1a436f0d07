#!/usr/bin/env bash
# Test tools of kore-plugin-websocket: the Autobahn|Testsuite (wstest), which
# runs only on Python 2.7, in $ROOT/.venv/autobahn27.  Idempotent.
set -euo pipefail
ROOT=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
AB="$ROOT/.venv/autobahn27"
TOOLS="$ROOT/.venv/virtualenv-tool"
if [ -x "$AB/bin/wstest" ] && "$AB/bin/wstest" --autobahnversion >/dev/null 2>&1; then
    exit 0
fi
PY27=${PY27:-}
if [ -z "$PY27" ] && command -v pyenv >/dev/null 2>&1; then
    PY27="$(pyenv root)/versions/2.7.18/bin/python"
fi
[ -n "$PY27" ] && [ -x "$PY27" ] || PY27=$(command -v python2.7 || true)
if [ -z "$PY27" ] || [ ! -x "$PY27" ]; then
    echo "websocket setup: no Python 2.7 interpreter (set PY27=...): the Autobahn test will be skipped" >&2
    exit 0
fi
echo "websocket setup: building the Autobahn|Testsuite venv in $AB"
if [ ! -x "$TOOLS/bin/virtualenv" ]; then
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install -q "virtualenv==20.21.1"
fi
rm -rf "$AB"
"$TOOLS/bin/virtualenv" -q -p "$PY27" "$AB"
"$AB/bin/pip" install -q --disable-pip-version-check \
    setuptools==44.0.0 txaio==2.1.0 incremental==16.10.1 pyOpenSSL==19.1.0 \
    cryptography==3.3.2 Twisted==19.10.0 zope.interface==4.6.0 jinja2==2.11.3 \
    markupsafe==1.1.1 Werkzeug==1.0.1 klein==17.10.0 service_identity==18.1.0 \
    unittest2==1.1.0 six==1.16.0 "autobahn[accelerate,twisted]==0.10.9" \
    autobahntestsuite==25.10.1
"$AB/bin/wstest" --autobahnversion
