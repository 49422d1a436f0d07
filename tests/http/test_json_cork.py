"""kore.json_serializer (the module that turns dicts and lists into JSON
bodies) and socketify's cork_end / cork_send, on one korectl server."""

import json

import pytest

from kh_util import Conn, start_module_server
from kore_testing import wait_for

APP = """
import json, kore

class Compact:
    '''Sorted keys, no spaces, a newline: not what the json default gives.'''
    calls = 0

    @staticmethod
    def dumps(obj):
        Compact.calls += 1
        return json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\\n"

    loads = staticmethod(json.loads)

class AsBytes:
    @staticmethod
    def dumps(obj):
        return ("bytes:" + json.dumps(obj)).encode()

def kore_parent_configure(args):
    try:
        kore.json_serializer(object())
    except TypeError as exc:
        kore.log(kore.LOG_INFO, "refused: %s" % exc)
    kore.json_serializer(Compact)

@kore.route("/json/end")
def json_end(req):
    req.end({"b": 1, "a": [1, 2], "c": "\\u00e9"})

@kore.route("/json/send")
def json_send(req):
    req.send({"z": None, "y": True}, status=b"201 Created", headers=[("X-S", "1")])

@kore.route("/json/write")
def json_write(req):
    req.write([3, 2, 1])
    req.end([0])

@kore.route("/json/text")
def json_text(req):
    # str and bytes are sent as they are: the serializer is not asked
    req.end('{"not": "reserialized"}')

@kore.route("/json/calls")
def json_calls(req):
    req.end(str(Compact.calls))

@kore.route("/json/bytes")
def json_bytes(req):
    kore.json_serializer(AsBytes)
    try:
        req.end({"k": 1})
    finally:
        kore.json_serializer(Compact)

@kore.route("/cork/end")
def cork_end(req):
    def cb(r):
        r.write_status(202).write_header("X-A", "1")
        r.write("part,")
        r.cork_end("last")
    req.cork(cb)

@kore.route("/cork/end-json")
def cork_end_json(req):
    req.cork(lambda r: r.write_status(200).cork_end({"k": "v"}))

@kore.route("/cork/send")
def cork_send(req):
    req.cork(lambda r: r.cork_send("plain", content_type=b"text/x-test",
                                   status=b"203 Non-Authoritative Information",
                                   headers=[("X-B", "2")]))

@kore.route("/cork/send-json")
def cork_send_json(req):
    req.cork_send([1, {"b": 2, "a": 1}])

@kore.route("/cork/close")
def cork_close(req):
    req.cork(lambda r: r.cork_end("bye", end_connection=True))
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_module_server(tmp_path_factory, APP, workers=1)
    yield s
    s.cleanup()


@pytest.fixture
def conn(srv):
    c = Conn(srv.port, timeout=10)
    yield c
    c.close()


def _get(conn, path):
    conn.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    r = conn.read_response()
    assert r is not None, path
    return r


def test_json_serializer_refuses_a_module_without_dumps(srv):
    assert "refused: json_serializer: the module needs a dumps() function" in srv.log()


def test_json_serializer_writes_dicts_and_lists(conn):
    r = _get(conn, "/json/end")
    assert r.status == 200 and r.header("content-type") == "application/json"
    assert r.body == b'{"a":[1,2],"b":1,"c":"\\u00e9"}\n'
    r = _get(conn, "/json/send")
    assert (r.status, r.header("x-s"), r.header("content-type")) == (201, "1", "application/json")
    assert r.body == b'{"y":true,"z":null}\n'
    r = _get(conn, "/json/write")           # chunked: each piece serialized
    assert r.header("transfer-encoding") == "chunked"
    assert r.body == b"[3,2,1]\n[0]\n"


def test_json_serializer_is_not_asked_for_text_and_may_return_bytes(conn):
    before = int(_get(conn, "/json/calls").body)
    r = _get(conn, "/json/text")
    assert r.body == b'{"not": "reserialized"}' and r.header("content-type") != "application/json"
    assert int(_get(conn, "/json/calls").body) == before
    r = _get(conn, "/json/bytes")
    assert r.body == b'bytes:{"k": 1}' and r.header("content-type") == "application/json"
    assert _get(conn, "/json/end").body.endswith(b"}\n")    # Compact again


def test_cork_end_finishes_a_corked_response(conn):
    r = _get(conn, "/cork/end")
    assert (r.status, r.header("x-a")) == (202, "1")
    assert r.body == b"part,last"
    r = _get(conn, "/cork/end-json")
    assert r.header("content-type") == "application/json" and r.body == b'{"k":"v"}\n'


def test_cork_send_status_headers_and_type(conn):
    r = _get(conn, "/cork/send")
    assert (r.status, r.reason) == (203, "Non-Authoritative Information")
    assert r.header("content-type") == "text/x-test" and r.header("x-b") == "2"
    assert r.body == b"plain"
    r = _get(conn, "/cork/send-json")       # outside a cork it is send()
    assert r.header("content-type") == "application/json"
    assert json.loads(r.body) == [1, {"a": 1, "b": 2}] and r.body == b'[1,{"a":1,"b":2}]\n'


def test_cork_end_end_connection_closes(conn):
    r = _get(conn, "/cork/close")
    assert r.body == b"bye" and r.header("connection") == "close"
    assert wait_for(lambda: conn.closed(wait=0.5), 10)
