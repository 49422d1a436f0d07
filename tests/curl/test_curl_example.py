"""examples/python-curl runs under korectl."""

import os
import time
import urllib.request

import pytest

from kore_testing import started_on, with_free_ports

pytestmark = pytest.mark.timeout(60)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(ROOT, "examples", "python-curl", "app.py")


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


def test_example(kore_server):
    # the app calls itself on PORT: picked before it starts, picked again if
    # another process took it meanwhile
    def start(port):
        srv = kore_server(APP, workers=1, bind=False, env={"PORT": str(port)})
        srv.port = port
        return started_on(srv, (port,))
    port = with_free_ports(1, start).port
    base = "http://127.0.0.1:%d" % port
    assert get(base + "/httpclient") == (200, b"async done: hello from the upstream\n")
    assert get(base + "/curl") == (200, b"upstream got: uploaded with kore.curl\n")
    start = time.monotonic()
    assert get(base + "/parallel") == (200, b"[200, 200, 200, 200, 200, 200, 200, 200, 200, 200]\n")
    assert time.monotonic() - start < 4     # ten 0.5 s requests at once, not 5 s
