"""HTTP/1.1 conformance against a real korectl (RFC 9110/9112).

What is not about HTTP/1.1's framing (statuses, errors, limits, bodies) runs
over HTTP/2 (h2c) too, with the same assertions (kh_proto); the rest is
marked http1_only."""

import json
import socket
import time

import pytest

from kh_proto import Session, client, http1_only, raw
from kh_util import Conn, request, wait_for


def test_basic_get_date_server(main_server, proto):
    with Session(main_server.port, proto) as s:
        r = s.send("GET", "/")
        closed = s.closed(0.3)
    assert r.status == 200 and r.body == b"hello"
    assert r.header("server") == "kore"
    assert r.header("date").endswith(" GMT")
    assert r.header("content-length") == "5"
    assert not closed


@http1_only
def test_keepalive_many_requests_one_connection(main_server):
    c = Conn(main_server.port)
    for i in range(50):
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello"
    c.close()


@http1_only
def test_pipelining_in_one_packet(main_server):
    c = Conn(main_server.port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
           b"GET /opt/zz HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    bodies = [c.read_response().body for _ in range(4)]
    assert bodies == [b"hello", b"abc", b'["zz"]', b"hello"]
    assert c.closed()


@http1_only
def test_http10_closes_and_keepalive_opt_in(main_server):
    r, closed = request(main_server.port, b"GET / HTTP/1.0\r\n\r\n")
    assert r.status == 200 and closed
    c = Conn(main_server.port)
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    r = c.read_response()
    assert r.header("connection").lower() == "keep-alive"
    c.send(b"GET / HTTP/1.0\r\n\r\n")
    assert c.read_response().status == 200
    assert c.closed()


@http1_only
def test_connection_close(main_server):
    r, closed = request(main_server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert r.header("connection") == "close" and closed


@http1_only
def test_head_follows_get(main_server):
    c = Conn(main_server.port)
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response(head_only=True)
    assert r.status == 200 and r.header("content-length") == "5"
    # no body follows: the next response comes right after the head
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.read_response().body == b"hello"
    c.close()


@http1_only
def test_chunked_request_body(main_server):
    r, _ = request(main_server.port,
                   b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
    assert r.status == 200 and r.body == b"hello world"


@http1_only
def test_chunked_response_body(main_server):
    r, _ = request(main_server.port, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.header("transfer-encoding") == "chunked"
    assert r.body == b"abcdef"
    # HTTP/1.0 gets a close-delimited body instead of chunks
    r, closed = request(main_server.port, b"GET /stream HTTP/1.0\r\n\r\n")
    assert r.header("transfer-encoding") is None and r.body == b"abcdef" and closed


@http1_only
def test_expect_100_continue(main_server):
    c = Conn(main_server.port)
    c.send(b"POST /sfy/continue HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
           b"Expect: 100-continue\r\n\r\n")
    r = c.read_response()
    assert r.status == 100
    c.send(b"abcd")
    r = c.read_response()
    assert r.status == 200 and json.loads(r.body) == {"len": 4}
    c.close()


@http1_only
def test_expect_100_over_limit_gets_413_without_continue(main_server):
    r, closed = request(main_server.port,
                        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n"
                        b"Expect: 100-continue\r\n\r\n")
    assert r.status == 413 and closed


@http1_only
def test_curl_expect_continue_large_upload(main_server, tmp_path):
    import subprocess
    p = tmp_path / "up"
    p.write_bytes(b"z" * 50000)
    out = subprocess.run(["curl", "-s", "-o", "-", "--data-binary", "@%s" % p,
                          "-H", "Expect: 100-continue", main_server.url + "/echo"],
                         capture_output=True, timeout=20)
    assert out.stdout == b"z" * 50000


def test_body_limits(main_server, proto):
    with Session(main_server.port, proto) as s:
        r = s.send("POST", "/echo", [("Content-Length", "1024001")], end=False)
        # HTTP/1.1 closes the connection; HTTP/2 resets only the stream, with
        # NO_ERROR (RFC 9113 8.1: stop sending, the response is complete)
        closed = s.closed() if proto == "h1" else (
            s.conn.until(lambda: 1 in s.conn.resets) and s.conn.resets[1] == 0)
    assert r.status == 413 and closed
    body = b"y" * 1024000
    with client(main_server.url, proto) as cl:
        resp = cl.post("/echo", content=body)
    assert resp.status_code == 200 and len(resp.content) == len(body)
    # over the limit without a content-length (chunked / DATA frames)
    with Session(main_server.port, proto) as s:
        r = s.send("POST", "/echo", body=b"q" * (2 * 0xfa000), length=False, end=False)
        assert r.status == 413
        if proto != "h1":   # the connection goes on
            assert s.send("GET", "/").status == 200
    if proto != "h1":
        return
    c = Conn(main_server.port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    c.send(b"fa000\r\n" + b"q" * 0xfa000 + b"\r\n" + b"fa000\r\n" + b"q" * 0xfa000 + b"\r\n")
    r = c.read_response()
    assert r.status == 413
    c.close()


def test_body_offload_to_disk(main_server, proto):
    body = b"o" * 200000
    with client(main_server.url, proto) as cl:
        resp = cl.post("/echo", content=body)
    assert resp.content == body
    assert resp.headers["x-body-path"].startswith("/") and "bodies" in resp.headers["x-body-path"]
    import hashlib
    assert resp.headers["x-digest"] == hashlib.sha256(body).hexdigest()
    with client(main_server.url, proto) as cl:
        resp = cl.post("/echo", content=b"small")
    assert resp.headers["x-body-path"] == "None"
    assert resp.headers["x-digest"] == hashlib.sha256(b"small").hexdigest()


def test_digest_not_stale(main_server, proto):
    import hashlib
    c = Session(main_server.port, proto)
    assert c.send("PUT", "/echo", body=b"abc").header("x-digest") == \
        hashlib.sha256(b"abc").hexdigest()
    assert c.send("PATCH", "/echo").header("x-digest") == hashlib.sha256(b"").hexdigest()
    c.close()


def test_header_too_large_431(main_server, proto):
    with Session(main_server.port, proto) as s:
        r = s.send("GET", "/", [("X-Big", "a" * 5000)])
        # HTTP/1.1 closes the connection; over HTTP/2 the next stream is served
        closed = s.closed() if proto == "h1" else s.send("GET", "/").body == b"hello"
    assert r.status == 431 and closed


@http1_only          # the request line's length: HTTP/1.1 framing
def test_uri_too_long_414(main_server):
    r, closed = request(main_server.port, b"GET /" + b"a" * 1997 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 404
    r, closed = request(main_server.port, b"GET /" + b"a" * 1998 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 414 and closed
    # still sending the request line
    c = Conn(main_server.port)
    c.send(b"GET /" + b"a" * 3000)
    r = c.read_response()
    assert r.status == 414
    c.close()


def test_handler_exception_500_and_worker_keeps_serving(main_server, proto):
    c = Session(main_server.port, proto)
    r = c.send("GET", "/boom")
    assert r.status == 500
    assert c.send("GET", "/").body == b"hello"
    c.close()
    assert main_server.wait_log("ValueError: boom")
    r = raw(main_server.port, proto, "GET", "/async-boom")
    assert r.status == 500
    assert main_server.wait_log("KeyError")


def test_no_response_gives_500_and_log_names_route(main_server, proto):
    r = raw(main_server.port, proto, "GET", "/noresponse")
    assert r.status == 500
    assert main_server.wait_log("route '/noresponse' returned without responding")


def test_exception_after_response_only_logged(main_server, proto):
    if proto == "h1":
        c = Conn(main_server.port)
        c.send(b"GET /boom-after HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        r2 = c.read_response()
    else:
        c = Session(main_server.port, proto)
        r = c.send("GET", "/boom-after")
        r2 = c.send("GET", "/")
    assert r.status == 200 and r.body == b"sent"
    assert r2.status == 200 and r2.body == b"hello"     # no stray second 500
    c.close()
    assert main_server.wait_log("after response")


def test_return_value_ignored(main_server, proto):
    r = raw(main_server.port, proto, "GET", "/returns")
    assert r.status == 200 and r.body == b"ok"
    r = raw(main_server.port, proto, "GET", "/")
    assert r.status == 200


def test_async_handler(main_server, proto):
    r = raw(main_server.port, proto, "GET", "/async")
    assert r.body == b"async"


def test_404_405_allow(main_server, proto):
    with Session(main_server.port, proto) as s:
        r = s.send("GET", "/nope")
        closed = s.closed(0.3)
    assert r.status == 404 and not closed
    r = raw(main_server.port, proto, "DELETE", "/")
    assert r.status == 405 and r.header("allow") == "GET, HEAD"
    r = raw(main_server.port, proto, "OPTIONS", "/")
    assert r.status == 405
    # body of a refused request is drained, the connection stays usable
    c = Session(main_server.port, proto)
    assert c.send("POST", "/nope", body=b"hello").status == 404
    assert c.send("GET", "/").body == b"hello"
    c.close()


def test_status_reason_and_204_304(main_server, proto):
    r = raw(main_server.port, proto, "GET", "/status?code=299")
    assert r.status == 299 and r.reason == ""           # (HTTP/2 has no reason phrase)
    c = Session(main_server.port, proto)
    r = c.send("GET", "/status?code=204")
    assert r.status == 204 and r.header("content-length") is None
    assert c.send("GET", "/status?code=304").status == 304
    assert c.send("GET", "/").body == b"hello"
    c.close()


@http1_only
def test_absolute_form_target(main_server):
    r, _ = request(main_server.port, b"GET http://example.com/info?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 200
    d = json.loads(r.body)
    assert d["host"] == "example.com" and d["path"] == "/info"


def test_httpx_client_roundtrips(main_server, proto):
    with client(main_server.url, proto) as cl:
        for _ in range(5):
            assert cl.get("/").text == "hello"
        assert cl.post("/echo", content=b"x" * 10000).content == b"x" * 10000
        assert cl.get("/stream").content == b"abcdef"


def test_curl(main_server, proto):
    import subprocess
    urls = [main_server.url + "/", main_server.url + "/opt/ab/12"]
    if proto == "h1":
        out = subprocess.run(["curl", "-s", "-i", "--http1.1"] + urls,
                             capture_output=True, timeout=20).stdout
    else:
        # one URL per run: curl 7.88 with --http2-prior-knowledge re-uses the
        # connection for a second URL and then sends nothing on it
        out = b"".join(subprocess.run(["curl", "-s", "-i", "--http2-prior-knowledge", u],
                                      capture_output=True, timeout=20).stdout for u in urls)
    assert out.count(b"HTTP/1.1 200 OK" if proto == "h1" else b"HTTP/2 200") == 2
    assert b'["ab", "/12", "12"]' in out


def test_pipelined_responses_held_go_out_before_a_slow_handler(main_server):
    """Responses to pipelined requests are held and sent together, but a
    handler that waits does not hold back the responses before it."""
    c = Conn(main_server.port, timeout=20)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2
           + b"GET /slow?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n"
           + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    first = [c.read_response().body for _ in range(2)]
    assert first == [b"hello", b"hello"]
    assert b"slow" not in c.buf            # they did not wait for /slow
    rest = [c.read_response().body for _ in range(2)]
    assert rest == [b"slow", b"hello"] and c.closed()


def test_pipelined_responses_held_go_out_before_an_error(main_server):
    c = Conn(main_server.port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 20 + b"GET / HTTP/1.1\r\n\r\n")   # no Host
    bodies = [c.read_response() for _ in range(21)]
    assert [r.body for r in bodies[:20]] == [b"hello"] * 20
    assert bodies[20].status == 400 and c.closed()


@http1_only
def test_a_response_too_big_for_one_send_is_finished_while_the_connection_waits(main_server):
    """A held response that a non-blocking send takes only part of is
    written on by the event loop while the connection waits for the client's
    next request (which the client sends only after the whole response)."""
    body = (b"0123456789abcdef" * 3751)[:60000]
    c = Conn(main_server.port, timeout=20)
    for _ in range(3):
        c.send(b"GET /tiny-sndbuf?size=60000 HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == body
    c.send(b"GET /tiny-sndbuf?size=30000 HTTP/1.1\r\nHost: x\r\n\r\n" * 3
           + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = [c.read_response().body for _ in range(4)]
    assert got == [body[:30000]] * 3 + [b"hello"] and c.closed()
