"""Choosing HTTP/2: ALPN h2,http/1.1 on TLS, h2c by prior knowledge only
from trusted peers, Upgrade: h2c ignored, the options and their errors."""

import socket
import ssl
import subprocess

import h2.settings
import pytest

from h2_helpers import APP, start_h2
from h2client import H2Client, PREFACE
from kore_testing import KORECTL, peer_read_all, wait_for

pytestmark = pytest.mark.timeout(60)
SC = h2.settings.SettingCodes


def alpn(port, offered):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(offered)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.selected_alpn_protocol()


def curl(*args):
    return subprocess.run(["curl", "-sk", "-w", " %{http_version} %{http_code}"] + list(args),
                          capture_output=True, text=True, timeout=20).stdout


def raw_exchange(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out


def h1_error(out):
    # "PRI * HTTP/2.0" read as HTTP/1.1: 505 HTTP Version Not Supported
    return out.startswith((b"HTTP/1.1 505 ", b"HTTP/1.1 400 ")) and b"Connection: close" in out


def test_alpn_offers_exactly_h2_and_http11(h2srv):
    p = h2srv.tls_port
    assert alpn(p, ["h2", "http/1.1"]) == "h2"
    assert alpn(p, ["http/1.1", "h2"]) == "h2"        # the server's preference
    assert alpn(p, ["http/1.1"]) == "http/1.1"
    assert alpn(p, ["h2c", "spdy/3.1", "h2-14"]) is None   # h2c is never chosen on TLS


def test_one_tls_port_serves_both(h2srv):
    assert curl("--http2", h2srv.tls_url + "/") == "hello 2 200"
    assert curl("--http1.1", h2srv.tls_url + "/") == "hello 1.1 200"


def test_h2c_prior_knowledge_from_a_trusted_peer(h2srv):
    assert curl("--http2-prior-knowledge", h2srv.url + "/") == "hello 2 200"
    assert curl(h2srv.url + "/") == "hello 1.1 200"


def test_upgrade_h2c_is_answered_as_http11(h2srv):
    assert curl("--http2", h2srv.url + "/") == "hello 1.1 200"
    out = raw_exchange(h2srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, "
                       b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
                       b"Connection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") and b"101" not in out.split(b"\r\n")[0]


def test_split_preface_is_read_whole(h2srv):
    with socket.create_connection(("127.0.0.1", h2srv.port), timeout=10) as s:
        s.sendall(PREFACE[:5])
        # the server has read the first bytes alone
        assert wait_for(lambda: peer_read_all(s), 5)
        s.sendall(PREFACE[5:] + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        data = s.recv(9)
        assert data[3] == 4       # a SETTINGS frame: HTTP/2


def test_settings_sent_are_the_defaults(h2srv):
    c = H2Client(h2srv.port)
    assert c.until(lambda: SC.MAX_CONCURRENT_STREAMS in c.remote_settings)
    s = c.remote_settings
    assert s[SC.MAX_CONCURRENT_STREAMS] == 100
    assert s[SC.INITIAL_WINDOW_SIZE] == 65535
    assert s[SC.MAX_FRAME_SIZE] == 16384
    assert s[SC.MAX_HEADER_LIST_SIZE] == 65536
    c.close()


@pytest.fixture(scope="module")
def untrusted(tmp_path_factory, pki):
    """prior-knowledge on, but 127.0.0.1 is not in --forwarded-allow-ips;
    the SETTINGS come from KORE_* variables and flags."""
    srv = start_h2(tmp_path_factory, pki,
                   ["--http2-cleartext", "prior-knowledge", "--forwarded-allow-ips", "10.9.9.9",
                    "--http2-max-frame-size", "32768"],
                   env={"KORE_HTTP2_MAX_CONCURRENT_STREAMS": "7",
                        "KORE_HTTP2_INITIAL_WINDOW_SIZE": "131072",
                        "KORE_HTTP2_MAX_HEADER_LIST_SIZE": "8192"}, name="untrusted")
    yield srv
    srv.cleanup()


def test_h2c_from_an_untrusted_peer_is_not_served(untrusted):
    out = raw_exchange(untrusted.port, PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    assert h1_error(out), out[:100]     # a clean HTTP/1.1 error
    assert curl("--http2-prior-knowledge", untrusted.url + "/").endswith(" 000") or \
        " 2 " not in curl("--http2-prior-knowledge", untrusted.url + "/")
    assert curl(untrusted.url + "/") == "hello 1.1 200"
    # TLS does not depend on trust
    assert curl("--http2", untrusted.tls_url + "/") == "hello 2 200"


def test_settings_follow_the_options(untrusted):
    c = H2Client(untrusted.tls_port, tls=True)
    assert c.until(lambda: SC.MAX_CONCURRENT_STREAMS in c.remote_settings)
    s = c.remote_settings
    assert s[SC.MAX_CONCURRENT_STREAMS] == 7
    assert s[SC.INITIAL_WINDOW_SIZE] == 131072
    assert s[SC.MAX_FRAME_SIZE] == 32768
    assert s[SC.MAX_HEADER_LIST_SIZE] == 8192
    c.close()


@pytest.fixture(scope="module")
def h1only(tmp_path_factory, pki):
    srv = start_h2(tmp_path_factory, pki, ["--http-protocols", "h1"], name="h1only")
    yield srv
    srv.cleanup()


def test_http_protocols_h1_turns_http2_off(h1only):
    assert alpn(h1only.tls_port, ["h2", "http/1.1"]) == "http/1.1"
    assert curl("--http2", h1only.tls_url + "/") == "hello 1.1 200"
    out = raw_exchange(h1only.port, PREFACE)
    assert h1_error(out)


def test_cleartext_is_off_by_default(h1only, tmp_path):
    # h1only has no --http2-cleartext: the preface gets HTTP/1.1's answer
    out = raw_exchange(h1only.port, PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    assert h1_error(out)


@pytest.mark.parametrize("args, words", [
    (["--http-protocols", "h2,h3"], ["http_protocols", "h2 or h1"]),
    (["--http2-cleartext", "upgrade"], ["http2_cleartext", "prior-knowledge"]),
    (["--http2-max-frame-size", "100"], ["http2_max_frame_size", "16384"]),
])
def test_bad_options_stop_start_up(tmp_path, pki, args, words):
    env = {"PORT": "1", "TLS_PORT": "2", "CERT": str(pki / "c.pem"), "KEY": str(pki / "k.pem"),
           "FILES": str(tmp_path)}
    import os
    e = dict(os.environ)
    e.update(env)
    r = subprocess.run([KORECTL, "run", "--workers", "1"] + args + [APP], capture_output=True,
                       text=True, timeout=30, env=e, cwd=str(tmp_path))
    assert r.returncode != 0
    out = r.stdout + r.stderr
    for w in words:
        assert w in out, out
