"""hookcall.direct: a per-request hook called without pluggy's per-call
machinery gives what runtime.notify gives (order, arguments, a raising
implementation reported and stopping the call), or None with a wrapper."""

import pluggy
import pytest

from kore_http import hookcall, hookspecs

impl = pluggy.HookimplMarker("kore")


@pytest.fixture
def pm(monkeypatch):
    pm = pluggy.PluginManager("kore")
    pm.add_hookspecs(hookspecs)
    monkeypatch.setattr(hookcall.runtime, "hook", lambda name: getattr(pm.hook, name))
    return pm


def plugin(log, tag, raises=False, argnames=("req", "status", "duration")):
    class P:
        pass
    if argnames == ("req",):
        def kore_request_done(req):
            log.append((tag, req))
    else:
        def kore_request_done(req, status, duration):
            log.append((tag, req, status, duration))
            if raises:
                raise ValueError(tag)
    P.kore_request_done = staticmethod(impl(kore_request_done))
    return P


def test_same_order_and_arguments_as_pluggy(pm):
    log = []
    pm.register(plugin(log, "a"), name="a")
    pm.register(plugin(log, "b", argnames=("req",)), name="b")
    pm.register(plugin(log, "c"), name="c")
    pm.hook.kore_request_done(req="R", status=200, duration=0.5)
    expected, log[:] = list(log), []
    hookcall.direct("kore_request_done", "kore_request_done hook")(
        req="R", status=200, duration=0.5)
    assert log == expected and [x[0] for x in log] == ["c", "b", "a"]


def test_single_plain_implementation(pm):
    log = []
    pm.register(plugin(log, "m"), name="metrics")
    call = hookcall.direct("kore_request_done", "kore_request_done hook")
    call(req="R", status=404, duration=0.25)
    assert log == [("m", "R", 404, 0.25)]


def test_raising_implementation_is_reported_and_stops_the_call(pm, monkeypatch):
    log, reported = [], []
    monkeypatch.setattr(hookcall, "report", lambda exc_info, where: reported.append(
        (exc_info[0], where)))
    pm.register(plugin(log, "first"), name="first")
    pm.register(plugin(log, "boom", raises=True), name="boom")
    call = hookcall.direct("kore_request_done", "kore_request_done hook")
    assert call(req="R", status=200, duration=0.1) is None
    assert [x[0] for x in log] == ["boom"]          # pluggy's order: boom ran first
    assert reported == [(ValueError, "kore_request_done hook (plugin 'boom', "
                                     "kore_request_done)")]


def test_single_raising_implementation_is_reported(pm, monkeypatch):
    reported = []
    monkeypatch.setattr(hookcall, "report", lambda exc_info, where: reported.append(where))
    pm.register(plugin([], "boom", raises=True), name="boom")
    hookcall.direct("kore_request_done", "w")(req="R", status=200, duration=0.1)
    assert reported == ["w (plugin 'boom', kore_request_done)"]


def test_wrapper_or_no_implementation_gives_none(pm):
    assert hookcall.direct("kore_request_done", "w") is None

    class W:
        @impl(wrapper=True)
        def kore_request_done(self, req, status, duration):
            return (yield)
    pm.register(W(), name="w")
    assert hookcall.direct("kore_request_done", "w") is None


def test_hook_tracing_goes_through_pluggy(pm, monkeypatch):
    pm.register(plugin([], "m"), name="metrics")
    monkeypatch.setenv("KORE_TRACE_HOOKS", "1")
    assert hookcall.direct("kore_request_done", "w") is None


def test_admitters_in_pluggy_order_and_wrappers_refused(pm):
    class A:
        @staticmethod
        @impl
        def kore_http_admit(req, target):
            return None

    class B:
        @staticmethod
        @impl
        def kore_http_admit(req, target):
            return False

    assert hookcall.admitters() == ()
    pm.register(A, name="a")
    pm.register(B, name="b")
    assert hookcall.admitters() == ((B.kore_http_admit, "b"), (A.kore_http_admit, "a"))
    assert [i.plugin_name for i in reversed(pm.hook.kore_http_admit.get_hookimpls())] \
        == ["b", "a"]

    class W:
        @staticmethod
        @impl(wrapper=True)
        def kore_http_admit(req, target):
            return (yield)

    pm.register(W, name="w")
    with pytest.raises(RuntimeError, match="plugin 'w' implements it as a wrapper"):
        hookcall.admitters()
