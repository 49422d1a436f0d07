"""Every hook the http plugin declares has a docstring saying when it runs
and what it returns, and is listed in docs/writing-plugins.md."""

import inspect
import os

from kore_http import hookspecs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _specs():
    return [(name, fn) for name, fn in vars(hookspecs).items()
            if name.startswith("kore_") and inspect.isfunction(fn)]


def test_every_http_hookspec_has_a_docstring():
    specs = _specs()
    assert len(specs) >= 12
    for name, fn in specs:
        doc = inspect.getdoc(fn) or ""
        assert len(doc) > 80, "%s has no real docstring" % name
        assert "Runs in" in doc, "%s: say in which process and when it runs" % name


def test_every_http_hookspec_is_documented():
    text = open(os.path.join(ROOT, "docs", "writing-plugins.md")).read()
    http = open(os.path.join(ROOT, "docs", "http.md")).read()
    for name, _ in _specs():
        assert "`%s`" % name in text, "%s missing from docs/writing-plugins.md" % name
        assert name in http, "%s missing from docs/http.md" % name
