"""A socketify.py application file, unchanged, under korectl run: no
socketify package installed, (res, req) handlers, route parameters, the
error handler, a router, a websocket route."""

import importlib.util
import os

import httpx
import pytest

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
    s = KoreServer(tmp_path_factory.mktemp("socketify"), APP)
    try:
        yield s
    finally:
        s.cleanup()


def test_documented_examples(srv):
    u = srv.url
    assert httpx.get(u + "/", timeout=10).text == "Hello World!"
    r = httpx.get(u + "/redirect", timeout=10)
    assert r.status_code == 302 and r.headers["location"] == "/redirected"
    r = httpx.get(u + "/not-found", timeout=10)
    assert r.status_code == 404 and r.text == "Not Found"
    assert httpx.get(u + "/ok", timeout=10).text == "OK"
    assert httpx.get(u + "/json", timeout=10).json() == {"Hello": "World!"}
    r = httpx.get(u + "/with-headers", timeout=10)
    assert r.headers["x-rate-limit-remaining"] == "10" and r.headers["another-headers"] == "Value"
    assert httpx.get(u + "/parts", timeout=10).text == "I can send messages in parts!"
    assert httpx.get(u + "/user/1", timeout=10).text == "Hello user with id 1!"
    assert httpx.get(u + "/user/7", timeout=10).text == "All params ['7']"
    r = httpx.get(u + "/cookies", timeout=10, cookies={"session_id": "abc"})
    assert r.text == "Your session_id cookie is: abc"
    assert "session_id=1234567890" in r.headers["set-cookie"]
    assert httpx.get(u + "/queries?search=kore&x=1&x=2", timeout=10).text == \
        "search=kore all=[('search', ['kore']), ('x', ['1', '2'])]"
    assert httpx.get(u + "/api/ping", timeout=10).text == "pong"


def test_error_handler(srv):
    r = httpx.get(srv.url + "/oops", timeout=10)
    assert r.status_code == 500 and r.text == "Sorry we did something wrong"
    assert srv.wait_log("Listening on port http://localhost:3000 now")


def test_websocket_route(srv):
    from websockets.sync.client import connect
    with connect("ws://127.0.0.1:%d/ws" % srv.port, open_timeout=10) as ws:
        assert ws.recv(timeout=10) == "welcome"
        ws.send("echo me")
        assert ws.recv(timeout=10) == "echo me"
