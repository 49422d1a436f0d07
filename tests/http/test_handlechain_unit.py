"""handlechain.HandleChain runs kore_http_handle wrappers with pluggy's
semantics (order, results, exceptions), without pluggy per call."""

import pluggy
import pytest

from kore import runtime
from kore_http import hookspecs
from kore_http.handlechain import HandleChain

hookimpl = pluggy.HookimplMarker("kore")


class Inner:
    @staticmethod
    @hookimpl
    def kore_http_handle(req, target):
        req.append("inner")
        if target == "boom":
            raise ValueError("boom")
        return 200


def make_wrapper(name, change=None, catch=False):
    class W:
        @staticmethod
        @hookimpl(wrapper=True)
        def kore_http_handle(req):
            req.append("in " + name)
            try:
                status = yield
            except ValueError:
                if not catch:
                    raise
                req.append("caught by " + name)
                return 599
            req.append("out %s %s" % (name, status))
            return change if change is not None else status
    return W


@pytest.fixture
def pm(monkeypatch):
    pm = pluggy.PluginManager("kore")
    pm.add_hookspecs(hookspecs)
    pm.register(Inner, "http")
    monkeypatch.setattr(runtime, "plugin_manager", lambda: pm)
    monkeypatch.setattr(runtime, "hook", lambda name: getattr(pm.hook, name))
    return pm


def both(pm, target):
    """(pluggy's answer and trace, the chain's answer and trace)."""
    out = []
    for how in ("pluggy", "chain"):
        trace = []
        chain = HandleChain()
        chain.load(Inner.kore_http_handle)
        try:
            if how == "pluggy":
                r = pm.hook.kore_http_handle(req=trace, target=target)
            else:
                assert not chain.use_pluggy
                r = chain.call(trace, target)
        except ValueError as exc:
            r = "raised %s" % exc
        out.append((r, trace))
    return out


def test_order_and_results_match_pluggy(pm):
    pm.register(make_wrapper("a"), "a")
    pm.register(make_wrapper("b", change=201), "b")
    p, c = both(pm, "ok")
    assert p == c
    # the last registered wrapper is the outermost (pluggy's LIFO order)
    assert c == (201, ["in b", "in a", "inner", "out a 200", "out b 200"])


def test_exceptions_go_through_the_wrappers(pm):
    pm.register(make_wrapper("a"), "a")
    pm.register(make_wrapper("b", catch=True), "b")
    p, c = both(pm, "boom")
    assert p == c
    pm.unregister(name="b")
    p, c = both(pm, "boom")
    assert p == c and c[0] == "raised boom"


def test_falls_back_to_pluggy_for_other_plain_implementations(pm):
    class Other:
        @staticmethod
        @hookimpl(tryfirst=True)
        def kore_http_handle(req, target):
            return 418
    pm.register(Other, "other")
    chain = HandleChain()
    chain.load(Inner.kore_http_handle)
    assert chain.use_pluggy
    assert chain.call([], "ok") == 418
