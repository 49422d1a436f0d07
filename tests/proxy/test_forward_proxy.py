"""kore.enable_proxy: absolute-URI requests and CONNECT tunnels, for
allowed clients and ports only."""

import json
import socket

import pytest

from kore_testing import KoreServer
from px_util import get, start_upstream

APP = '''
import os
import kore

kore.enable_proxy(connect_ports=[int(os.environ["UPPORT"])])

@kore.route("/local", methods=["get"])
def local(req):
    req.response(200, b"local")
'''

CLOSED_APP = '''
import kore
kore.enable_proxy(allow=["10.0.0.0/8"])
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    up = start_upstream(tmp_path_factory, "a")
    p = KoreServer(tmp_path_factory.mktemp("fwd"), APP, workers=1,
                   env={"UPPORT": str(up.port)})
    closed = KoreServer(tmp_path_factory.mktemp("fwdclosed"), CLOSED_APP, workers=1)
    yield {"up": up, "proxy": p, "closed": closed}
    for s in (p, closed, up):
        s.cleanup()


def raw(port, data, until=b"\r\n\r\n"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    buf = b""
    while until not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return s, buf


def test_absolute_uri_request_is_fetched(env):
    up = env["up"].port
    s, buf = raw(env["proxy"].port, b"GET http://127.0.0.1:%d/x?y=1 HTTP/1.1\r\n"
                 b"Host: 127.0.0.1:%d\r\nProxy-Connection: keep-alive\r\n\r\n" % (up, up),
                 until=b"}")
    s.close()
    assert buf.startswith(b"HTTP/1.1 200")
    res = json.loads(buf.split(b"\r\n\r\n", 1)[1])
    assert res["target"] == "/x?y=1"
    assert "proxy-connection" not in dict(res["headers"])
    # an ordinary request still reaches the proxy's own routes
    assert get(env["proxy"].port, "/local")[2] == b"local"


def test_connect_tunnel_to_an_allowed_port(env):
    up = env["up"].port
    s, buf = raw(env["proxy"].port, b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d"
                 b"\r\n\r\n" % (up, up))
    assert buf.startswith(b"HTTP/1.1 200")
    s.sendall(b"GET /tunneled HTTP/1.1\r\nHost: a\r\n\r\n")
    got = b""
    while b"}" not in got:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    assert json.loads(got.split(b"\r\n\r\n", 1)[1])["target"] == "/tunneled"


def test_connect_to_other_ports_and_outside_clients_are_refused(env):
    s, buf = raw(env["proxy"].port, b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n")
    s.close()
    assert buf.startswith(b"HTTP/1.1 403")
    up = env["up"].port
    for req in (b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (up, up),
                b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: x\r\n\r\n"):
        s, buf = raw(env["closed"].port, req)
        s.close()
        assert buf.startswith(b"HTTP/1.1 403"), buf[:60]
    assert env["closed"].wait_log("refused (not in allow)")


def test_connect_without_enable_proxy_is_400(env):
    # the upstream is a kore server without a forward proxy
    s, buf = raw(env["up"].port, b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: x\r\n\r\n")
    s.close()
    assert buf.startswith(b"HTTP/1.1 400")
