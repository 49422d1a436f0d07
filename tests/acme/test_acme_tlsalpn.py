"""tls-alpn-01 against a real pebble: placeholder, issuance on a running
server with 2 workers, one order and one account, key files, the acme-tls/1
handshake, restart reusing account and certificate.

Pebble keeps its default 5 % badNonce rejection on here (the order must
get through it).
"""

import os
import re
import stat

import pytest

from acme_helpers import is_issued, served_cert, start_kore, verified_get
from acme_pebble import Pebble
from kore_testing import free_port, wait_for

pytestmark = pytest.mark.slow
AS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    work = tmp_path_factory.mktemp("acme-alpn")
    tls_port = free_port()
    pebble = Pebble(work / "pebble", http_port=free_port(), tls_port=tls_port,
                    nonce_reject=5).start()
    extra = {"T_RUNAS": "nobody"} if AS_ROOT else {}
    srv = start_kore(work, tls_port, pebble.url, pebble.ca, workers=2, **extra)
    try:
        assert wait_for(lambda: is_issued(tls_port, pebble.root_path), timeout=60), \
            srv.log() + pebble.log()[-3000:]
        yield {"work": work, "port": tls_port, "pebble": pebble, "srv": srv,
               "extra": extra}
    finally:
        srv.cleanup()
        pebble.stop()


def test_placeholder_logged_then_chain_verifies_against_the_ca_root(env):
    log = env["srv"].log()
    assert "localhost has no certificate yet: serving a self-signed placeholder" in log
    assert re.search(r"certificate for localhost issued: serial [0-9a-f]+", log)
    body = verified_get(env["port"], env["pebble"].root_path)
    assert body.startswith(b"HTTP/1.1 200") and b"hello from" in body


def test_every_worker_serves_the_issued_chain(env):
    log = env["srv"].log()
    for w in (1, 2):
        assert "[wrk %d] info: acme: new certificate for localhost in use" % w in log
    pids = set()
    for _ in range(30):
        body = verified_get(env["port"], env["pebble"].root_path)
        pids.add(body.rsplit(b"hello from ", 1)[1].strip())
    assert len(pids) >= 1
    leaf, _ = served_cert(env["port"])
    assert leaf.issuer.rfc4514_string().startswith("CN=Pebble Intermediate CA")


def test_one_order_and_one_account_whatever_the_workers(env):
    plog = env["pebble"].log()
    assert plog.count("Added order") == 1, plog
    assert len(re.findall(r"There are now \d+ accounts in memory", plog)) == 1
    assert "Starting 3 validations" in plog


def test_keys_are_0600_and_no_worker_holds_them(env):
    root = env["work"] / "acme-state"
    keys = list(root.rglob("key.pem"))
    assert len(keys) == 2                       # the account's and the domain's
    for path in keys + list(root.rglob("*.json")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    workers = env["srv"].children()
    assert len(workers) == 2
    for pid in workers:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            assert str(root) not in target, (pid, target)


@pytest.mark.skipif(not AS_ROOT, reason="workers drop to 'nobody' only when started as root")
def test_worker_cannot_open_the_account_key(env):
    key = next((env["work"] / "acme-state" / "accounts").rglob("key.pem"))
    body = verified_get(env["port"], env["pebble"].root_path, "/open?path=%s" % key)
    assert body.endswith(b"denied"), body


def test_acme_tls_handshake_gets_no_application_data(env):
    import socket
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["acme-tls/1"])
    with socket.create_connection(("127.0.0.1", env["port"]), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "acme-tls/1"
            # no challenge pending: the real certificate, then the server closes
            from cryptography import x509
            leaf = x509.load_der_x509_certificate(s.getpeercert(True))
            assert "Pebble" in leaf.issuer.rfc4514_string()
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try:
                assert s.recv(100) == b""
            except (ConnectionResetError, ssl.SSLError):
                pass
    # a normal client still gets HTTP
    assert served_cert(env["port"], alpn=["http/1.1"])[1] == "http/1.1"


def test_a_killed_worker_comes_back_with_the_issued_chain(env):
    import signal
    srv = env["srv"]
    victim = srv.children()[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: victim not in srv.children() and len(srv.children()) == 2,
                    timeout=20)
    assert srv.wait_log("restarting it", 10)
    assert wait_for(lambda: len(re.findall(r"worker \d \(pid \d+\) ready", srv.log())) >= 3,
                    timeout=20)
    # the new worker was forked from the master, which holds the new chain
    for _ in range(20):
        assert verified_get(env["port"], env["pebble"].root_path).startswith(b"HTTP/1.1 200")
    assert env["pebble"].log().count("Added order") == 1


def test_reload_keeps_serving_the_issued_chain(env):
    import signal
    srv = env["srv"]
    n = srv.log().count("serving the stored certificate")
    srv.send_signal(signal.SIGHUP)
    assert srv.wait_log("reload complete", 30), srv.log()
    assert srv.log().count("serving the stored certificate") > n
    for _ in range(10):
        assert verified_get(env["port"], env["pebble"].root_path).startswith(b"HTTP/1.1 200")
    assert env["pebble"].log().count("Added order") == 1


def test_restart_reuses_the_account_and_the_certificate(env):
    srv, pebble = env["srv"], env["pebble"]
    before = served_cert(env["port"])[0].serial_number
    assert srv.stop() == 0
    again = start_kore(env["work"], env["port"], pebble.url, pebble.ca, workers=2,
                       **env["extra"])
    try:
        assert again.wait_log("renewal at", timeout=20), again.log()
        log = again.log()
        assert "localhost: serving the stored certificate" in log
        assert "placeholder" not in log and "account registered" not in log
        assert served_cert(env["port"])[0].serial_number == before
        assert verified_get(env["port"], pebble.root_path).startswith(b"HTTP/1.1 200")
        plog = pebble.log()
        assert plog.count("Added order") == 1
        assert len(re.findall(r"There are now \d+ accounts in memory", plog)) == 1
    finally:
        again.cleanup()
