"""A socketify.py application file, unchanged, under korectl run: no
socketify package installed, (res, req) handlers, route parameters, the
error handler, a router, a websocket route; over HTTP/1.1 and HTTP/2 (h2c)."""

import importlib.util
import os

import pytest

from kh_proto import H2C_ENV, client, http1_only
from kore_http.socketify_app import pattern

APP = os.path.join(os.path.dirname(__file__), "apps", "socketify_app.py")


def test_route_patterns():
    assert pattern("/") == "/"
    assert pattern("/user/:id") == "^/user/([^/]+)$"
    assert pattern("/a/:x/b/:y") == "^/a/([^/]+)/b/([^/]+)$"
    assert pattern("/static/*") == "^/static(?:/(.*))?$"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    assert importlib.util.find_spec("socketify") is None   # the shim is what runs
    from kore_testing import KoreServer
    s = KoreServer(tmp_path_factory.mktemp("socketify"), APP, env=H2C_ENV)
    try:
        yield s
    finally:
        s.cleanup()


@pytest.fixture(scope="module")
def c(srv, proto):
    with client(srv.url, proto) as cl:
        yield cl


def test_documented_examples(c):
    assert c.get("/").text == "Hello World!"
    r = c.get("/redirect")
    assert r.status_code == 302 and r.headers["location"] == "/redirected"
    r = c.get("/not-found")
    assert r.status_code == 404 and r.text == "Not Found"
    assert c.get("/ok").text == "OK"
    assert c.get("/json").json() == {"Hello": "World!"}
    r = c.get("/with-headers")
    assert r.headers["x-rate-limit-remaining"] == "10" and r.headers["another-headers"] == "Value"
    assert c.get("/parts").text == "I can send messages in parts!"
    assert c.get("/user/1").text == "Hello user with id 1!"
    assert c.get("/user/7").text == "All params ['7']"
    r = c.get("/cookies", headers={"Cookie": "session_id=abc"})
    assert r.text == "Your session_id cookie is: abc"
    assert "session_id=1234567890" in r.headers["set-cookie"]
    assert c.get("/queries?search=kore&x=1&x=2").text == \
        "search=kore all=[('search', ['kore']), ('x', ['1', '2'])]"
    assert c.get("/api/ping").text == "pong"


def test_error_handler(srv, c):
    r = c.get("/oops")
    assert r.status_code == 500 and r.text == "Sorry we did something wrong"
    assert srv.wait_log("Listening on port http://localhost:3000 now")


@http1_only
def test_websocket_route(srv):
    from websockets.sync.client import connect
    with connect("ws://127.0.0.1:%d/ws" % srv.port, open_timeout=10) as ws:
        assert ws.recv(timeout=10) == "welcome"
        ws.send("echo me")
        assert ws.recv(timeout=10) == "echo me"
