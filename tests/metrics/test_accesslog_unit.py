"""Access-log formatting and buffering, in process: OpenTelemetry field
names, header values that try to forge a field or a line, the per-shape
line cache, gunicorn's atoms, bad format strings, the buffered sink."""

import base64
import json
import os
import time

import pytest

from kore.config import ConfigError
from kore_http import accessfmt
from kore_http.accessfmt import (CLOCK, CommonFormat, JsonFormat, Refused, check_format,
                                 compile_format)
from kore_http.logbuffer import Buffers, Sink
from kore_http.request import HttpRequest
from kore_http.stream import Stream


class FakeStream(Stream):
    __slots__ = ("addr", "tls", "http_version", "trusted", "proxied_address")

    def __init__(self, addr="192.0.2.7", tls=False, version="1.1"):
        self.addr = addr
        self.tls = tls
        self.http_version = version
        self.trusted = False
        self.proxied_address = None

    def remote_address(self):
        return self.addr


class FakeRoute:
    path = "^/item/[0-9]+$"


def make(target="/item/3?x=1", headers=(), method="GET", status=200, nbytes=321,
         stream=None, route=FakeRoute, rheaders=None):
    head = b"Host: example.test\r\n" + b"".join(
        b"%s: %s\r\n" % (n.encode(), v.encode("latin-1")) for n, v in headers)
    req = HttpRequest(stream or FakeStream(), method, target, True, head)
    req.host = "example.test"
    req.route = route
    req.bytes_sent = nbytes
    req._status = status
    req._rheaders = rheaders
    return req


NOW = 1764625648.5245   # 2025-12-01T21:47:28.524Z (mid-millisecond: no float edge)


def test_json_fields_are_opentelemetry_names():
    line = JsonFormat(2)(make(headers=[("User-Agent", "ua/1"), ("Referer", "http://r/")]),
                         200, 0.0125, NOW, None)
    rec = json.loads(line)
    assert list(rec) == [f for f, _ in accessfmt.JSON_FIELDS]
    assert rec["timestamp"] == "2025-12-01T21:47:28.524Z"
    assert rec["http.request.method"] == "GET"
    assert rec["url.scheme"] == "http" and rec["url.path"] == "/item/3"
    assert rec["url.query"] == "x=1" and rec["http.route"] == "^/item/[0-9]+$"
    assert rec["http.response.status_code"] == 200 and rec["http.response.size"] == 321
    assert rec["client.address"] == "192.0.2.7" and rec["server.address"] == "example.test"
    assert rec["network.protocol.name"] == "http" and rec["network.protocol.version"] == "1.1"
    assert rec["user_agent.original"] == "ua/1"
    assert rec["http.request.header.referer"] == "http://r/"
    assert rec["http.server.request.duration"] == 0.0125
    assert rec["process.pid"] == os.getpid() and rec["kore.worker.id"] == 2
    # absent values are null; TLS shows as https
    rec = json.loads(JsonFormat()(make("/x", stream=FakeStream(tls=True), route=None),
                                  404, 0.0, NOW, None))
    assert rec["url.query"] is None and rec["http.route"] is None
    assert rec["user_agent.original"] is None and rec["url.scheme"] == "https"
    assert rec["kore.worker.id"] is None


EVIL = ['x", "http.response.status_code": 500, "forged": "1',
        'a\\", "forged": 1, "b": "\\',
        '\u2028}\n{"forged": true}', 'tab\there \x7f \u00e9\u4e2d']


@pytest.mark.parametrize("value", EVIL)
def test_json_header_values_cannot_forge_fields(value):
    # the HTTP/1.1 parser never hands a raw CR/LF in a value; HTTP/2 could
    req = make(headers=[("User-Agent", "placeholder")])
    req._fields = [("host", "example.test"), ("user-agent", value), ("referer", value)]
    req._hlist = None
    line = JsonFormat()(req, 200, 0.001, NOW, {"note": value, "forged": "by a plugin"})
    assert "\n" not in line and "\r" not in line
    rec = json.loads(line, object_pairs_hook=_no_duplicates)
    assert rec["user_agent.original"] == value == rec["http.request.header.referer"]
    assert rec["note"] == value and rec["http.response.status_code"] == 200
    assert rec["forged"] == "by a plugin"      # the plugin's own field, once


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), keys
    return dict(pairs)


def test_plugin_fields_never_replace_ours():
    line = JsonFormat()(make(), 200, 0.001, NOW, {"url.path": "/forged", "user": "dave"})
    rec = json.loads(line, object_pairs_hook=_no_duplicates)
    assert rec["url.path"] == "/item/3" and rec["user"] == "dave"


def test_line_cache_keeps_time_and_duration_per_request():
    fmt = JsonFormat()
    a = json.loads(fmt(make(), 200, 0.001, NOW, None))
    b = json.loads(fmt(make(), 200, 0.002, NOW + 1.5, None))
    c = json.loads(fmt(make(headers=[("User-Agent", "other")]), 200, 0.003, NOW, None))
    d = json.loads(fmt(make(status=404), 404, 0.003, NOW, None))
    assert len(fmt.cache) == 3
    assert a["http.server.request.duration"] == 0.001 and b["http.server.request.duration"] == 0.002
    assert b["timestamp"] == "2025-12-01T21:47:30.024Z"
    assert c["user_agent.original"] == "other" and a["user_agent.original"] is None
    assert d["http.response.status_code"] == 404
    fmt.cache.LIMIT = 2
    fmt(make("/other"), 200, 0.0, NOW, None)
    assert len(fmt.cache) == 1      # cleared when full: bounded


def test_common_format_escapes_quotes_and_control_characters():
    fmt = CommonFormat()
    line = fmt(make('/a"b', headers=[("User-Agent", 'say "hi" \\ \x01'),
                                     ("Referer", "http://r/")]), 200, 0.25, NOW, {"k": "a b"})
    tz = time.strftime("%z", time.localtime(NOW))
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S", time.localtime(NOW))
    assert line == ('192.0.2.7 - - [%s %s] "GET /a\\"b HTTP/1.1" 200 321 "http://r/" '
                    '"say \\"hi\\" \\\\ \\x01" 0.250000 k=a%%20b' % (stamp, tz))


def test_clock_formats_once_per_second_and_millisecond():
    assert CLOCK.iso_ms(NOW) == "2025-12-01T21:47:28.524Z"
    assert CLOCK.iso_ms(NOW + 0.0004) == "2025-12-01T21:47:28.524Z"
    assert CLOCK.iso_ms(NOW + 0.001) == "2025-12-01T21:47:28.525Z"
    assert CLOCK.iso_ms(NOW + 60) == "2025-12-01T21:48:28.524Z"


def test_gunicorn_atoms():
    auth = "Basic " + base64.b64encode(b"alice:secret").decode()
    req = make(headers=[("User-Agent", "ua/1"), ("Referer", "http://r/"),
                        ("Authorization", auth), ("X-Req", 'id "7"')],
               rheaders=[["Content-Type", "text/plain"], ["X-Out", "yes"]])
    os.environ["KORE_TEST_ATOM"] = "env-value"
    try:
        fmt = compile_format('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(m)s %(U)s %(q)s %(H)s '
                             '%(s)s %(B)s %(b)s "%(f)s" "%(a)s" %(T)s %(M)s %(D)s %(L)s '
                             '%(p)s %({x-req}i)s %({content-type}o)s %({X-Missing}o)s '
                             '%({KORE_TEST_ATOM}e)s 100%%')
    finally:
        del os.environ["KORE_TEST_ATOM"]
    line = fmt(req, 201, 1.2345678, NOW, None)
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(NOW))
    assert line == ('192.0.2.7 - alice [%s] "GET /item/3?x=1 HTTP/1.1" GET /item/3 x=1 '
                    'HTTP/1.1 201 321 321 "http://r/" "ua/1" 1 1234 1234567 1.234568 <%d> '
                    'id \\"7\\" text/plain - env-value 100%%' % (stamp, os.getpid()))
    # no body bytes: %(b)s is '-'; no Basic auth: %(u)s is '-'
    assert compile_format("%(b)s %(u)s")(make(nbytes=0), 200, 0, NOW, None) == "- -"
    assert compile_format("%(u)s")(make(headers=[("Authorization", "Bearer x")]),
                                   200, 0, NOW, None) == "-"


def test_gunicorn_refused_request():
    req = Refused("198.51.100.2", "BREW", "/pot?x=1", "1.1", 77)
    line = compile_format('%(h)s "%(r)s" %(s)s %(b)s %(a)s %({x}i)s %({x}o)s')(
        req, 501, 0.0, NOW, None)
    assert line == '198.51.100.2 "BREW /pot?x=1 HTTP/1.1" 501 77 - - -'
    rec = json.loads(JsonFormat()(req, 501, 0.0, NOW, None))
    assert rec["url.path"] == "/pot" and rec["url.query"] == "x=1"
    assert rec["client.address"] == "198.51.100.2" and rec["http.route"] is None


def test_refused_requests_of_two_clients_keep_their_addresses():
    # one line cache per format: two clients refused alike (same method,
    # target, status and size) must not share the first one's line
    for fmt in (JsonFormat(), CommonFormat()):
        lines = [fmt(Refused(addr, "BREW", "/pot", "1.1", 77), 501, 0.0, NOW, None)
                 for addr in ("198.51.100.2", "198.51.100.3", "198.51.100.2")]
        for line, addr in zip(lines, ("198.51.100.2", "198.51.100.3", "198.51.100.2")):
            assert addr in line and line.count("198.51.100.") == 1, (fmt, lines)


@pytest.mark.parametrize("spec, words", [
    ("%(h)s %(zz)s", "unknown atom '%(zz)s'"),
    ("%(h)s %({}i)s", "unknown atom '%({}i)s'"),
    ("%(h)s %({x}z)s", "unknown atom"),
    ("%(h)s 5%", "neither '%%' nor an atom"),
    ("%(h)s %(s", "unterminated atom"),
    ("plain text", "neither 'common', 'json' nor a gunicorn format string"),
])
def test_bad_format_names_the_option(spec, words):
    with pytest.raises(ConfigError) as ei:
        check_format(spec)
    assert "http_access_log_format" in str(ei.value) and words in str(ei.value)


def test_check_format_values():
    assert check_format(" JSON ") == "json" and check_format("common") == "common"
    assert check_format("%(h)s") == "%(h)s"


def test_option_registry_refuses_a_bad_format():
    from kore_http.options import options
    opt = [o for o in options() if o.name == "http_access_log_format"][0]
    with pytest.raises(ConfigError) as ei:
        opt.convert("%(h)s %(nope)s")
    assert "http_access_log_format" in str(ei.value)
    assert opt.convert("%(h)s %(s)s") == "%(h)s %(s)s"


def test_sink_buffers_whole_lines_until_the_limit(tmp_path):
    path = str(tmp_path / "sub" / "access.log")
    s = Sink(path, 100)
    s.write("a" * 40)
    s.write("b" * 40)
    assert not os.path.exists(path)          # buffered
    s.write("c" * 40)                        # 123 bytes >= 100: written
    assert open(path).read() == "a" * 40 + "\n" + "b" * 40 + "\n" + "c" * 40 + "\n"
    s.write("d")
    s.close()
    assert open(path).read().endswith("c" * 40 + "\nd\n")
    s0 = Sink(path, 0)                       # buffer 0: every line at once
    s0.write("e")
    assert open(path).read().endswith("d\ne\n")
    s0.close()


def test_buffers_reopen_and_stop(tmp_path):
    path = str(tmp_path / "access.log")
    b = Buffers()
    b.configure(65536, 0)                    # no timer
    b.sink(path).write("one")
    b.reopen()                               # SIGUSR1: pending lines first
    os.rename(path, path + ".1")
    b.sink(path).write("two")
    b.stop()
    assert open(path + ".1").read() == "one\n" and open(path).read() == "two\n"
    assert b.sinks == {} and b.timer is None
