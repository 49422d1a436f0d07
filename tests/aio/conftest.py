"""Helpers for the kore.aio unit tests (in-process, gevent APIs directly)."""

import gevent
import pytest

from kore import _state
from kore.aio import drive


def _run(coro, timeout=10):
    """Drive ``coro`` in its own greenlet, as the http plugin does, and return
    its value (or raise its exception)."""
    g = gevent.spawn(drive, coro)
    g.join(timeout)
    if not g.ready():
        g.kill()
        raise AssertionError("coroutine did not finish within %ss" % timeout)
    return g.get()


@pytest.fixture
def run():
    return _run


@pytest.fixture
def reports(monkeypatch):
    """Collect what kore.trace.report receives instead of logging it."""
    seen = []
    monkeypatch.setattr(_state, "tracer", lambda et, ev, tb: seen.append(ev))
    return seen


@pytest.fixture
def master_role(monkeypatch):
    """Pretend to be the master importing the app."""
    monkeypatch.setattr(_state, "role", "master")
    saved = list(_state.deferred)
    del _state.deferred[:]
    yield _state.deferred
    del _state.deferred[:]
    _state.deferred.extend(saved)


@pytest.fixture(autouse=True)
def _no_leftover_greenlets():
    yield
    gevent.sleep(0)
