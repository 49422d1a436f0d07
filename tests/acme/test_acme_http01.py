"""http-01 against a real pebble (its three validations reach the plain
listener), the classic kore.conf form against pebble, a CA that answers
rateLimited with Retry-After, and start-up mistakes."""

import http.server
import json
import re
import subprocess
import threading
import time

import pytest

from acme_helpers import (APP, is_issued, kore_on_pebble, listening, served_cert,
                          start_kore, verified_get, with_ports)
from acme_pebble import Pebble, Ports
from kore_testing import KORECTL, KoreServer, wait_for

pytestmark = pytest.mark.slow
CHALLENGE_LINE = re.compile(r'"GET /\.well-known/acme-challenge/([A-Za-z0-9_-]+) '
                            r'HTTP/1\.1" 200 ')


@pytest.fixture
def ports():
    with Ports() as p:
        yield p


def _answered_tokens(path):
    """Tokens the plain listener answered 200 for, one per request, from
    the access log."""
    try:
        with open(path) as f:
            return CHALLENGE_LINE.findall(f.read())
    except FileNotFoundError:
        return []


def test_http01_on_the_plain_listener(tmp_path, ports):
    pebble = Pebble(tmp_path / "pebble", http_port=ports.take(), tls_port=ports.take(),
                    ports=ports).start()
    access = tmp_path / "access.log"
    # no acme_ca_bundle: pebble's CA comes from $SSL_CERT_FILE
    srv, tls_port = kore_on_pebble(tmp_path, ports, pebble, plain=True, ca=None,
                                   T_CHALLENGE="http-01", SSL_CERT_FILE=pebble.ca,
                                   REQUESTS_CA_BUNDLE="", KORE_HTTP_ACCESS_LOG=access,
                                   KORE_HTTP_ACCESS_LOG_BUFFER=0)
    plain_port = pebble.http_port
    try:
        assert wait_for(lambda: is_issued(tls_port, pebble.root_path), timeout=60), \
            srv.log() + pebble.log()[-3000:]
        assert "(http-01)" in srv.log()
        plog = pebble.log()
        assert "Starting 3 validations" in plog and plog.count("Added order") == 1
        # pebble's three validations were answered on the plain listener,
        # all for the one token of the order
        tokens = _answered_tokens(access)
        assert len(tokens) >= 3 and len(set(tokens)) == 1, tokens
        assert verified_get(tls_port, pebble.root_path).startswith(b"HTTP/1.1 200")
        # no token pending any more: the route answers 404, the app's routes work
        import urllib.request
        import urllib.error
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen("http://127.0.0.1:%d/.well-known/acme-challenge/abc"
                                   % plain_port, timeout=10)
        assert e.value.code == 404
        req = urllib.request.Request("http://127.0.0.1:%d/" % plain_port,
                                     headers={"Host": "localhost"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
        # kore.acme_renew() from a worker: the master orders again at once
        first = served_cert(tls_port)[0].serial_number
        req = urllib.request.Request("http://127.0.0.1:%d/renew" % plain_port,
                                     headers={"Host": "localhost"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.read() == b"renewing"
        assert wait_for(lambda: served_cert(tls_port)[0].serial_number != first,
                        timeout=60), srv.log()
        assert verified_get(tls_port, pebble.root_path).startswith(b"HTTP/1.1 200")
        assert pebble.log().count("Added order") == 2
        assert len(set(_answered_tokens(access))) == 2
    finally:
        srv.cleanup()
        pebble.stop()


class RateLimitedCA(http.server.ThreadingHTTPServer):
    """A directory whose newAccount answers 429 rateLimited, Retry-After: 2."""

    daemon_threads = True

    def __init__(self):
        self.hits = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = "http://127.0.0.1:%d/dir" % self.server_address[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _send(self, status, body=b"", ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Replay-Nonce", "bm9uY2U%d" % int(time.time() * 1000))
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        base = "http://127.0.0.1:%d" % self.server.server_address[1]
        self._send(200, json.dumps({"newNonce": base + "/nonce", "newAccount": base + "/acct",
                                    "newOrder": base + "/order"}).encode())

    def do_HEAD(self):
        self._send(200)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.hits.append((self.path, time.monotonic()))
        self._send(429, json.dumps({"type": "urn:ietf:params:acme:error:rateLimited",
                                    "detail": "too many new accounts"}).encode(),
                   "application/problem+json", [("Retry-After", "2")])


def test_rate_limited_retry_after_is_honoured(tmp_path, ports):
    ca = RateLimitedCA()
    t = threading.Thread(target=ca.serve_forever, daemon=True)
    t.start()
    srv = with_ports(ports, lambda p: start_kore(tmp_path, p, ca.url, workers=1,
                                                 T_RETRY_MIN=1), (ports.take(),))
    try:
        assert wait_for(lambda: len(ca.hits) >= 3, timeout=30), srv.log()
        gaps = [b[1] - a[1] for a, b in zip(ca.hits, ca.hits[1:])]
        # acme_retry_min is 1 s (back-off 1, 2, ...), but the CA asked for 2
        assert all(g >= 1.8 for g in gaps), gaps
        log = srv.log()
        assert re.search(r"failed \(attempt 1\): rateLimited: too many new accounts "
                         r"\(the CA asks to retry after 2 s\); still serving the "
                         r"self-signed placeholder; next attempt in 2 s", log), log
    finally:
        srv.cleanup()
        ca.shutdown()
        ca.server_close()


def _run(tmp_path, env, app=APP, timeout=60):
    import os
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([KORECTL, "run", app], cwd=str(tmp_path), env=e,
                          capture_output=True, text=True, timeout=timeout)


def test_http01_without_a_plain_server_stops_start_up(tmp_path):
    r = _run(tmp_path, {"T_TLS_PORT": "0", "T_PROVIDER": "https://127.0.0.1:1/dir",
                        "T_CHALLENGE": "http-01"})
    assert r.returncode != 0
    assert "acme_challenge http-01" in r.stdout + r.stderr
    assert "declares no plain server" in r.stdout + r.stderr


def test_bad_options_name_the_option(tmp_path):
    base = {"T_TLS_PORT": "0", "T_PROVIDER": "https://127.0.0.1:1/dir"}
    r = _run(tmp_path, dict(base, T_RENEW_BEFORE="soon"))
    assert r.returncode != 0 and "option 'acme_renew_before'" in r.stdout + r.stderr
    r = _run(tmp_path, dict(base, T_CA=str(tmp_path / "missing.pem")))
    assert r.returncode != 0 and "option 'acme_ca_bundle'" in r.stdout + r.stderr
    r = _run(tmp_path, dict(base, T_PROVIDER="letsencrypt"))
    assert r.returncode != 0 and "option 'acme_provider'" in r.stdout + r.stderr


ACME_ONLY_APP = """
import kore

class App:
    def configure(self, args):
        kore.server("tls", ip="127.0.0.1", port="0", tls=True)
        d = kore.domain("localhost", attach="tls", acme=True)
        d.route("/", self.index, methods=["get"])

    def index(self, req):
        req.response(200, b"x")

koreapp = App()
"""
NOT_INSTALLED = ("domain 'localhost': acme=True needs kore-plugin-acme (not installed: "
                 "pip install kore-plugin-acme)")


def test_without_the_plugin_acme_true_names_the_package(tmp_path):
    """No acme_* option set (those are refused on their own without the
    plugin): acme=True alone names the package."""
    (tmp_path / "app.py").write_text(ACME_ONLY_APP)
    r = _run(tmp_path, {"KORE_PLUGINS": "http"}, app=str(tmp_path / "app.py"))
    assert r.returncode != 0
    assert NOT_INSTALLED in r.stdout + r.stderr, r.stdout + r.stderr
    # the kore.conf form
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "app.py").write_text("def index(req):\n    req.response(200, b'x')\n")
    (conf / "kore.conf").write_text(
        "python_import app.py\n"
        "server tls {\n    bind 127.0.0.1 0\n    tls yes\n}\n"
        "domain localhost {\n    attach tls\n    acme yes\n"
        "    route / app.index\n}\n")
    r = _run(conf, {"KORE_PLUGINS": "http"}, app=str(conf / "kore.conf"))
    assert r.returncode != 0
    assert NOT_INSTALLED in r.stdout + r.stderr, r.stdout + r.stderr


def test_without_the_plugin_an_acme_option_names_the_package(tmp_path):
    r = _run(tmp_path, {"T_TLS_PORT": "0", "T_PROVIDER": "https://x/dir",
                        "KORE_PLUGINS": "http"})
    assert r.returncode != 0
    assert "pip install kore-plugin-acme" in r.stdout + r.stderr


def test_kore_conf_acme_yes(tmp_path, ports):
    """The classic kore.conf form, against pebble: ``acme yes`` in a domain
    block, the acme_* options at top level (acme_root and acme_ca_bundle
    among them), no acme_challenge: Kore's default, tls-alpn-01."""
    pebble = Pebble(tmp_path / "pebble", http_port=ports.take(), tls_port=ports.take(),
                    ports=ports).start()
    (tmp_path / "app.py").write_text(
        "import os\n\n"
        "def index(req):\n    req.response(200, b'conf from %d' % os.getpid())\n")

    def start(tls_port, http_port):
        if (tls_port, http_port) != (pebble.tls_port, pebble.http_port):
            pebble.challenge_ports(http_port, tls_port)
        (tmp_path / "kore.conf").write_text(
            "python_import app.py\n"
            "workers 2\n"
            "acme_email conf@localhost.test\n"
            "acme_provider %s\n"
            "acme_ca_bundle %s\n"
            "acme_root state-dir\n"
            "acme_retry_min 1\n"
            "server tls {\n    bind 127.0.0.1 %d\n    tls yes\n}\n"
            "domain localhost {\n    attach tls\n    acme yes\n"
            "    route / app.index\n}\n" % (pebble.url, pebble.ca, tls_port))
        srv = KoreServer(tmp_path, str(tmp_path / "kore.conf"), bind=False, wait=False,
                         workers=None, env={"SSL_CERT_FILE": "", "REQUESTS_CA_BUNDLE": ""})
        return listening(srv, [tls_port]), tls_port

    srv, tls_port = with_ports(ports, start, (pebble.tls_port, pebble.http_port))
    try:
        assert wait_for(lambda: is_issued(tls_port, pebble.root_path), timeout=60), \
            srv.log() + pebble.log()[-3000:]
        log = srv.log()
        assert ("localhost has no certificate yet: serving a self-signed placeholder "
                "until the ACME order (tls-alpn-01, %s) completes" % pebble.url) in log
        assert b"conf from" in verified_get(tls_port, pebble.root_path)
        # acme_root: the state is there, not in the default acme-state/
        state = tmp_path / "state-dir"
        assert (state / "certificates" / "localhost" / "fullchain.pem").is_file()
        assert (state / "certificates" / "localhost" / "key.pem").is_file()
        regr = json.loads(next((state / "accounts").rglob("account.json")).read_text())
        assert regr["body"]["contact"] == ["mailto:conf@localhost.test"]
        assert not (tmp_path / "acme-state").exists()
        assert pebble.log().count("Added order") == 1
    finally:
        srv.cleanup()
        pebble.stop()
