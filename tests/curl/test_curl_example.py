"""examples/python-curl runs under korectl."""

import os
import time
import urllib.request

import pytest

from curl_helpers import free_port, wait_port

pytestmark = pytest.mark.timeout(60)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(ROOT, "examples", "python-curl", "app.py")


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


def test_example(kore_server):
    port = free_port()
    srv = kore_server(APP, workers=1, bind=False, env={"PORT": str(port)})
    assert wait_port("127.0.0.1", port, 20, srv.proc), srv.log()
    base = "http://127.0.0.1:%d" % port
    assert get(base + "/httpclient") == (200, b"async done: hello from the upstream\n")
    assert get(base + "/curl") == (200, b"upstream got: uploaded with kore.curl\n")
    start = time.monotonic()
    assert get(base + "/parallel") == (200, b"[200, 200, 200, 200, 200, 200, 200, 200, 200, 200]\n")
    assert time.monotonic() - start < 1.5
