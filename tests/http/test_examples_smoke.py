"""Every HTTP example under examples/ that no feature test starts is started
here as its docstring says and the URLs its docstring names answer 200."""

import ast
import os
import re

import httpx
import pytest

from kore_testing import ROOT, KoreServer

EXAMPLES = ["demo", "filemaps", "hello", "wsgi-mount"]


def urls_of(path):
    """The paths of the http://127.0.0.1:8888 URLs the docstring names (and
    the bare /paths after one on a curl line)."""
    doc = ast.get_docstring(ast.parse(open(path).read())) or ""
    paths = []
    for line in doc.splitlines():
        found = re.findall(r"http://127\.0\.0\.1:8888(/\S*)?", line)
        paths += [p or "/" for p in found]
        if "curl" in line and found:
            paths += [t for t in line.split() if t.startswith("/")]
    return list(dict.fromkeys(paths))


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_answers_the_urls_its_docstring_names(tmp_path, name):
    app = os.path.join(ROOT, "examples", name, "app.py")
    paths = urls_of(app)
    assert paths, "%s: its docstring names no URL" % name
    srv = KoreServer(tmp_path, app, cwd=os.path.dirname(app), workers=None)
    try:
        for p in paths:
            r = httpx.get(srv.url + p, timeout=10, follow_redirects=False)
            assert r.status_code == 200, (name, p, r.status_code, srv.log()[-2000:])
    finally:
        srv.cleanup()
