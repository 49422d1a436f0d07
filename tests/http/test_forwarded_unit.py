"""forwarded: RFC 7239 Forwarded and X-Forwarded-* parsing."""

from kore_http.forwarded import client_address, client_scheme, node_address, parse_forwarded


def test_parse_forwarded():
    assert parse_forwarded('for=192.0.2.60;proto=http;by=203.0.113.43') == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}]
    assert parse_forwarded('for="[2001:db8:cafe::17]:4711", for=unknown') == [
        {"for": "[2001:db8:cafe::17]:4711"}, {"for": "unknown"}]
    assert parse_forwarded('for=a b;x, for=198.51.100.1') == [{"for": "198.51.100.1"}]
    assert parse_forwarded('for="q\\"x"') == [{"for": 'q"x'}]


def test_node_address():
    assert node_address("[2001:db8::1]:80") == "2001:db8::1"
    assert node_address("192.0.2.1:8080") == "192.0.2.1"
    assert node_address("2001:db8::1") == "2001:db8::1"
    assert node_address("_hidden") is None and node_address("unknown") is None


def test_client_address_and_scheme():
    h = [("forwarded", "for=192.0.2.1, for=198.51.100.2;proto=https"),
         ("x-forwarded-for", "10.9.9.9")]
    assert client_address(h) == "198.51.100.2"        # Forwarded wins, last hop
    assert client_scheme(h) == "https"
    h = [("x-forwarded-for", "203.0.113.1, 198.51.100.7"), ("x-forwarded-proto", "https")]
    assert client_address(h) == "198.51.100.7"
    assert client_scheme(h) == "https"
    assert client_scheme([("x-forwarded-proto", "gopher")]) is None
    assert client_address([]) is None and client_scheme([]) is None
