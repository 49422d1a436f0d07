"""The hook layer in process: every hookspec is documented, errors are
reported naming the plugin, firstresult hooks stop at the first answer,
kore_namespace goes through pluggy, the worker lifecycle's error policy."""

import inspect
import os
import re

import pytest

from kore import _state, exitcodes, hookimpl, hookspecs, ipc, plugins, runtime
from kore.errors import PluginLoadError
from kore.lifecycle import BootFailure, WorkerLifecycle

from kore_testing import ROOT

def _spec_modules():
    """The kernel's hookspecs and those the plugins of this repository add
    through kore_add_hookspecs (documented in the same table)."""
    import glob
    import importlib
    mods = [hookspecs]
    # every plugins/<name>/kore_<name>/hookspecs.py of the repository
    names = sorted("%s.hookspecs" % os.path.basename(os.path.dirname(p)) for p in
                   glob.glob(os.path.join(ROOT, "plugins", "*", "kore_*", "hookspecs.py")))
    assert "kore_http.hookspecs" in names, names
    for name in names:
        try:
            mods.append(importlib.import_module(name))
        except ImportError:
            pass
    return mods


SPEC_FUNCS = {n: f for mod in _spec_modules() for n, f in vars(mod).items()
              if n.startswith("kore_") and inspect.isfunction(f)}
SPECS = sorted(SPEC_FUNCS)
DOC = os.path.join(ROOT, "docs", "writing-plugins.md")


def _signature(name):
    fn = SPEC_FUNCS[name]
    return "%s(%s)" % (name, ", ".join(inspect.signature(fn).parameters))


@pytest.mark.parametrize("name", SPECS)
def test_hookspec_has_a_complete_docstring(name):
    doc = inspect.getdoc(SPEC_FUNCS[name]) or ""
    assert doc, "%s has no docstring" % name
    assert re.search(r"\bRuns in\b", doc), "%s: say in which process it runs" % name
    assert ":returns:" in doc or re.search(r"^Return", doc, re.M), (
        "%s: say what it returns (:returns:)" % name)


@pytest.mark.parametrize("name", SPECS)
def test_hookspec_is_in_writing_plugins(name):
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    assert "`%s`" % _signature(name) in text, (
        "docs/writing-plugins.md: add `%s` to the hook table" % _signature(name))


def test_writing_plugins_names_only_real_hooks():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    named = set(re.findall(r"`(kore_[a-z_]+)\(", text))
    assert named, "the hook table is gone"
    assert named - set(SPECS) == set()


def test_firstresult_where_the_meaning_is_first_answer_wins():
    for name in ("kore_master_message", "kore_worker_message"):
        assert getattr(hookspecs, name).kore_spec["firstresult"], name


# -- a real PluginManager with in-process plugins ------------------------------

class Namespaced:
    """A plugin object; ``name`` is how pluggy registers it."""

    def __init__(self, **impls):
        for hook, fn in impls.items():
            setattr(self, hook, hookimpl(fn))


def _pm(monkeypatch, **named):
    pm = plugins.create_manager()
    for name, plugin in named.items():
        pm.register(plugin, name=name)
    monkeypatch.setattr(_state, "pm", pm)
    return pm


@pytest.fixture
def reports(monkeypatch):
    seen = []
    monkeypatch.setattr(_state, "tracer", lambda et, ev, tb: seen.append(ev))
    return seen


@pytest.fixture
def logged(monkeypatch):
    from kore.log import LOG
    lines = []
    monkeypatch.setattr(LOG, "write", lambda prio, msg: lines.append(msg))
    return lines


def test_notify_reports_naming_the_plugin_and_returns_empty(monkeypatch, logged):
    def boom(worker):
        raise ValueError("broken shutdown")
    _pm(monkeypatch, good=Namespaced(kore_worker_shutdown=lambda worker: None),
        bad=Namespaced(kore_worker_shutdown=boom))
    assert runtime.notify("kore_worker_shutdown", where="worker shutdown", worker=None) == []
    text = "\n".join(logged)
    assert "broken shutdown" in text
    assert "worker shutdown (plugin 'bad', kore_worker_shutdown)" in text


def test_notify_returns_results_in_pluggy_order(monkeypatch):
    _pm(monkeypatch, a=Namespaced(kore_worker_busy=lambda worker: 2),
        b=Namespaced(kore_worker_busy=lambda worker: None),
        c=Namespaced(kore_worker_busy=lambda worker: 5))
    assert runtime.notify("kore_worker_busy", worker=None) == [5, 2]


def test_call_reported_reraises_after_reporting(monkeypatch, reports):
    def boom(worker):
        raise KeyError("init")
    _pm(monkeypatch, bad=Namespaced(kore_worker_init=boom))
    with pytest.raises(KeyError):
        runtime.call_reported("kore_worker_init", worker=None)
    assert len(reports) == 1 and isinstance(reports[0], KeyError)


def test_notify_without_plugins_loaded(monkeypatch):
    monkeypatch.setattr(_state, "pm", None)
    assert runtime.notify("kore_worker_busy", worker=None) == []
    assert runtime.notify("kore_worker_message", worker=None, msg=None) is None
    assert runtime.implemented("kore_worker_busy") is False


def test_firstresult_message_stops_at_the_first_answer(monkeypatch, logged):
    calls = []

    def mine(worker, msg):
        calls.append("mine")
        return True if msg.kind == "mine.ping" else None

    def other(worker, msg):
        calls.append("other")
        return None
    # pluggy calls the last registered first
    _pm(monkeypatch, mine=Namespaced(kore_worker_message=mine),
        other=Namespaced(kore_worker_message=other))
    life = WorkerLifecycle(worker=None, app=None)
    life.dispatch(ipc.Message("mine.ping"))
    assert calls == ["other", "mine"]
    assert not any("no plugin handles" in line for line in logged)
    life.dispatch(ipc.Message("nobody.ping"))
    assert any("no plugin handles message kind 'nobody.ping'" in line for line in logged)


def test_dispatch_reports_a_raising_handler_once(monkeypatch, reports, logged):
    def boom(worker, msg):
        raise RuntimeError("handler broke")
    _pm(monkeypatch, bad=Namespaced(kore_worker_message=boom))
    WorkerLifecycle(worker=None, app=None).dispatch(ipc.Message("bad.ping"))
    assert [str(r) for r in reports] == ["handler broke"]
    assert not any("no plugin handles" in line for line in logged)


def test_namespace_is_called_through_pluggy_and_failures_name_the_plugin(monkeypatch):
    seen = []
    pm = _pm(monkeypatch, one=Namespaced(kore_namespace=lambda: {"x1": 1}),
             two=Namespaced(kore_namespace=lambda: None),
             three=Namespaced(kore_namespace=lambda: {"x3": 3}))
    pm.add_hookcall_monitoring(lambda name, impls, kw: seen.append(name),
                               lambda outcome, name, impls, kw: None)
    got = {pm.get_name(module): names for module, names in plugins._namespaces(pm)}
    assert got == {"one": {"x1": 1}, "three": {"x3": 3}}
    assert seen.count("kore_namespace") == 3     # pluggy saw every call

    def boom():
        raise OSError("no names today")
    pm = _pm(monkeypatch, fine=Namespaced(kore_namespace=lambda: {"y": 1}),
             broken=Namespaced(kore_namespace=boom))
    with pytest.raises(PluginLoadError, match="plugin 'broken': kore_namespace\\(\\) "
                       "failed: OSError: no names today"):
        list(plugins._namespaces(pm))


# -- WorkerLifecycle -------------------------------------------------------------

class App:
    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail

    def call(self, name, *args):
        self.calls.append(name)
        if name == self.fail:
            raise RuntimeError("%s broke" % name)


class W:
    id = 1


def _recorder(calls):
    return Namespaced(
        kore_worker_init=lambda worker: calls.append("init"),
        kore_worker_serve=lambda worker: calls.append("serve"),
        kore_worker_stop_accepting=lambda worker: calls.append("stop_accepting"),
        kore_worker_shutdown=lambda worker: calls.append("shutdown"))


def test_boot_runs_the_chain_in_order(monkeypatch, reports):
    calls = []
    _pm(monkeypatch, rec=_recorder(calls))
    app = App()
    WorkerLifecycle(W(), app).boot()
    assert calls == ["init", "serve"] and app.calls == ["workerstart"]


def test_boot_failure_codes(monkeypatch, reports):
    def boom(worker):
        raise ValueError("no pool")
    _pm(monkeypatch, bad=Namespaced(kore_worker_init=boom))
    with pytest.raises(BootFailure) as info:
        WorkerLifecycle(W(), App()).boot()
    assert info.value.exit_code == exitcodes.WORKER_BOOT_ERROR
    assert info.value.reason == "ValueError: no pool"

    _pm(monkeypatch, rec=_recorder([]))
    with pytest.raises(BootFailure) as info:
        WorkerLifecycle(W(), App(fail="workerstart")).boot()
    assert info.value.exit_code == exitcodes.APP_LOAD_ERROR
    assert "koreapp.workerstart() raised RuntimeError: workerstart broke" == info.value.reason


def test_stop_drains_until_idle_and_survives_broken_plugins(monkeypatch, reports):
    calls = []
    busy = [3]

    def count(worker):
        busy[0] = max(0, busy[0] - 1)
        return busy[0]

    def broken_shutdown(worker):
        raise RuntimeError("shutdown broke")
    _pm(monkeypatch, rec=_recorder(calls), counter=Namespaced(kore_worker_busy=count),
        broken=Namespaced(kore_worker_shutdown=broken_shutdown))
    app = App(fail="workerstop")
    pauses = []
    WorkerLifecycle(W(), app).stop(True, 30.0, lambda: pauses.append(1) or True)
    assert calls[0] == "stop_accepting"
    assert len(pauses) == 2                     # busy went 2, 1, 0
    assert app.calls == ["workerstop"]          # ran although a shutdown hook raised
    assert sorted(str(r) for r in reports) == ["shutdown broke", "workerstop broke"]


def test_drain_gives_up_on_fast_stop_and_on_the_deadline(monkeypatch):
    _pm(monkeypatch, busy=Namespaced(kore_worker_busy=lambda worker: 1))
    life = WorkerLifecycle(W(), App())
    assert life.drain(float("inf"), lambda: False) is False
    import time
    assert life.drain(time.monotonic() - 1, lambda: True) is False


def test_fast_stop_does_not_drain(monkeypatch):
    calls = []
    _pm(monkeypatch, rec=_recorder(calls),
        busy=Namespaced(kore_worker_busy=lambda worker: calls.append("busy") or 1))
    WorkerLifecycle(W(), App()).stop(False, 30.0, lambda: True)
    assert calls == ["stop_accepting", "shutdown"]


def test_failing_option_declaration_names_the_plugin(monkeypatch):
    from kore.config import Registry

    def broken(registry):
        raise TypeError("Option() missing 'kind'")
    pm = _pm(monkeypatch, fine=Namespaced(kore_config_options=lambda registry: None),
             opts=Namespaced(kore_config_options=broken))
    with pytest.raises(PluginLoadError, match="plugin 'opts': kore_config_options\\(\\) "
                       "failed: TypeError: Option\\(\\) missing 'kind'"):
        plugins.declare_options(pm, Registry())
