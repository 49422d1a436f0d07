"""examples/email runs under korectl and its message reaches the sink."""

import os
import re
import urllib.parse
import urllib.request

import pytest

from kore_testing import wait_for

pytestmark = pytest.mark.timeout(60)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(ROOT, "examples", "email", "app.py")


def test_example(kore_server, sinks, tmp_path, korectl):
    sink = sinks()
    env = {"SMTP": "127.0.0.1:%d" % sink.port, "KORE_SMTPDA_SPOOL": str(tmp_path / "spool")}
    srv = kore_server(APP, env=env)
    body = urllib.parse.urlencode({"to": "zoe@example.com", "name": "Zoë"}).encode()
    with urllib.request.urlopen(srv.url + "/welcome", data=body, timeout=10) as r:
        assert r.status == 202
        mid = r.read().decode().split()[1]
    (meta, m, raw), = sink.wait_messages(1)
    assert m["Message-ID"] == mid and meta["rcpt_tos"] == ["zoe@example.com"]
    alt = m.get_payload()
    assert m.get_content_type() == "multipart/alternative"
    related = alt[1]
    assert related.get_content_type() == "multipart/related"
    html, logo = related.get_payload()
    assert "cid:logo" in html.get_payload(decode=True).decode()
    assert logo["Content-ID"] == "<logo>"
    with open(os.path.join(ROOT, "examples", "email", "logo.png"), "rb") as f:
        assert logo.get_payload(decode=True) == f.read()
    def status():
        out = korectl("smtpda", "status", "--bind", "127.0.0.1:1", APP, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout
    assert wait_for(lambda: "delivered      1" in status(), 10)
    out = status()
    assert "spool depth    0" in out and re.search(r"agent +pid \d+", out), out
