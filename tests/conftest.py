"""Shared fixtures: real ``korectl`` processes on free loopback ports.

``kore_server(app, ...)`` starts ``korectl run`` and waits until it accepts
connections; every server a test started is stopped (TERM, then KILL of its
whole process group) when the test ends.
"""

import os
import subprocess

import pytest

from kore_testing import KORECTL, KoreServer, free_port, wait_port  # noqa: F401


@pytest.fixture
def kore_server(tmp_path):
    """Factory: ``kore_server(app_path_or_source, *extra_args, workers=1,
    env=None, args=(), bind=True)`` -> KoreServer (started and listening)."""
    started = []

    def start(app, *extra, **kw):
        srv = KoreServer(tmp_path, app, extra, **kw)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.cleanup()


@pytest.fixture
def korectl():
    """Run ``korectl`` to completion: korectl(*args, timeout=30) -> CompletedProcess."""
    def run(*args, timeout=30, env=None, cwd=None):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([KORECTL] + list(args), capture_output=True, text=True,
                              timeout=timeout, env=e, cwd=cwd)
    return run
