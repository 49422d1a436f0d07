"""tls_hello.offered_alpn over real ClientHellos made by the ssl module."""

import ssl

from kore_http.tls_hello import offered_alpn


def client_hello(alpn=None, name="a.test"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def test_alpn_lists():
    assert offered_alpn(client_hello(["acme-tls/1"])) == ["acme-tls/1"]
    assert offered_alpn(client_hello(["h2", "http/1.1"])) == ["h2", "http/1.1"]
    assert offered_alpn(client_hello()) == []


def test_incomplete_or_foreign_bytes():
    hello = client_hello(["h2"])
    for cut in (0, 3, 5, 40, len(hello) - 1):
        assert offered_alpn(hello[:cut]) is None
    assert offered_alpn(b"GET / HTTP/1.1\r\n\r\n") is None
    assert offered_alpn(b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00") is None
    # a garbled length inside the hello does not raise
    bad = bytearray(hello)
    bad[43] = 0xff
    assert offered_alpn(bytes(bad)) in (None, [], ["h2"])
