#!/usr/bin/env bash
# Set up .venv/ and what the tests need, then run the whole test suite.
#
# The suite mostly waits (servers starting, clients on loopback), so it runs
# in KORE_TEST_JOBS pytest-xdist processes (default 4), a test module per
# process (--dist loadfile: a module's shared servers start once).  Pass
# -n 0 to run it in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
# every korectl the tests start imports the whole tree: let Python keep the
# compiled modules instead of compiling them again in each process
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/python -m pytest -n "${KORE_TEST_JOBS:-4}" --dist loadfile "$@"
