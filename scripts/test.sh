#!/usr/bin/env bash
# Set up .venv/ and what the tests need, then run the whole test suite.
#
# The suite mostly waits (servers starting, clients on loopback), so it runs
# in KORE_TEST_JOBS pytest-xdist processes (default 3), a test module per
# process (--dist loadfile: a module's shared servers start once); then the
# tests marked `serial` (they need the CPU to themselves) run alone.  With
# arguments (a test path, -k ...), pytest runs just those, in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
# every korectl the tests start imports the whole tree: let Python keep the
# compiled modules instead of compiling them again in each process
unset PYTHONDONTWRITEBYTECODE
if [ "$#" -gt 0 ]; then
    exec .venv/bin/python -m pytest "$@"
fi
rc=0
.venv/bin/python -m pytest -n "${KORE_TEST_JOBS:-3}" --dist loadfile -m "not serial" || rc=$?
.venv/bin/python -m pytest -m serial || rc=$((rc ? rc : $?))
exit "$rc"
