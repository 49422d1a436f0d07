#!/usr/bin/env bash
# Set up .venv/ if needed and run the demo app on http://127.0.0.1:8888/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/korectl run examples/demo/app.py "$@"
