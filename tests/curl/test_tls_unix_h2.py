"""TLS verification, client certificates, unix sockets and HTTP/2."""

import json
import os
import uuid

import gevent
import pycurl
import pytest

from kore_curl import CONSTANTS as C
from kore_curl import httpclient

from curl_upstream import Upstream

pytestmark = pytest.mark.timeout(30)


def _fails(run, coro):
    async def main():
        with pytest.raises(RuntimeError) as info:
            await coro
        return str(info.value)
    return run(main())


def test_verification_is_on_by_default(run, tls_upstream):
    msg = _fails(run, httpclient(tls_upstream.url + "/").get())
    assert msg.startswith("request to '%s/' failed: " % tls_upstream.url)
    assert "certificate" in msg.lower()


def test_cabundle(run, tls_upstream, pki):
    async def main():
        return await httpclient(tls_upstream.url + "/", cabundle=pki["ca"]).get()
    assert run(main()) == (200, b"ok")


def test_wrong_cabundle_fails(run, tls_upstream, pki):
    msg = _fails(run, httpclient(tls_upstream.url + "/", cabundle=pki["other_ca"]).get())
    assert "certificate" in msg.lower()


def test_tlsverify_false(run, tls_upstream):
    async def main():
        return await httpclient(tls_upstream.url + "/", tlsverify=False).get()
    assert run(main()) == (200, b"ok")


def test_client_certificate(run, mtls_upstream, pki):
    async def main():
        c = httpclient(mtls_upstream.url + "/", cabundle=pki["ca"],
                       tlscert=pki["client_cert"], tlskey=pki["client_key"])
        return await c.get()
    assert run(main()) == (200, b"ok")


def test_client_certificate_required(run, mtls_upstream, pki):
    _fails(run, httpclient(mtls_upstream.url + "/", cabundle=pki["ca"]).get())


def test_unix_socket(run, unix_upstream):
    async def main():
        c = httpclient("http://localhost/echo", unix=unix_upstream.unix)
        return await c.post(body=b"over unix")
    status, body = run(main())
    assert status == 200
    assert json.loads(body)["body"] == "over unix"


def test_unix_socket_connections_reused(run, unix_upstream):
    async def main():
        for _ in range(20):
            assert await httpclient("http://localhost/", unix=unix_upstream.unix).get() \
                == (200, b"ok")
    run(main())
    assert unix_upstream.connections == 1


@pytest.mark.skipif(not os.path.exists("/proc/self"), reason="Linux only")
def test_abstract_unix_socket(run):
    name = "kore-curl-test-%s" % uuid.uuid4().hex
    up = Upstream(unix="\0" + name)
    try:
        async def main():
            c = httpclient("http://localhost/echo", unix="@" + name)
            first = await c.get()
            second = await c.get()
            return first, second
        first, second = run(main())
        assert first[0] == 200 and json.loads(first[1])["method"] == "GET"
        assert second[0] == 200
        assert up.connections == 1
    finally:
        up.stop()


def test_unix_socket_missing(run, tmp_path):
    msg = _fails(run, httpclient("http://localhost/",
                                 unix=str(tmp_path / "nothing.sock")).get())
    assert "failed" in msg


h2_supported = bool(pycurl.version_info()[4] & pycurl.VERSION_HTTP2)


@pytest.mark.skipif(not h2_supported, reason="libcurl without HTTP/2")
def test_http2_upstream(run, h2_upstream, pki):
    async def main():
        c = httpclient(h2_upstream.url + "/echo", cabundle=pki["ca"])
        return await c.post(body=b"h2 body", return_headers=True)
    status, headers, body = run(main())
    doc = json.loads(body)
    assert status == 200
    assert doc["proto"] == "h2"
    assert doc["body"] == "h2 body"
    assert headers["x-upstream"] == "yes"
    assert h2_upstream.protocols == ["h2"]


@pytest.mark.skipif(not h2_supported, reason="libcurl without HTTP/2")
def test_http2_concurrent_streams(run, h2_upstream, pki):
    async def one():
        c = httpclient(h2_upstream.url + "/slow?ms=300", cabundle=pki["ca"],
                       curlopt={C["CURLOPT_PIPEWAIT"]: 1})
        return await c.get()
    gs = [gevent.spawn(run, one()) for _ in range(20)]
    gevent.joinall(gs, timeout=10)
    assert [g.value for g in gs] == [(200, b"slow")] * 20
    # PIPEWAIT: the transfers share one multiplexed connection
    assert h2_upstream.connections == 1
    assert {r.proto for r in h2_upstream.requests} == {"h2"}


@pytest.mark.skipif(not h2_supported, reason="libcurl without HTTP/2")
def test_http1_only_when_asked(run, h2_upstream, pki):
    async def main():
        c = httpclient(h2_upstream.url + "/echo", cabundle=pki["ca"],
                       curlopt={C["CURLOPT_HTTP_VERSION"]: pycurl.CURL_HTTP_VERSION_1_1})
        return await c.get()
    status, body = run(main())
    assert json.loads(body)["proto"] == "http/1.1"
