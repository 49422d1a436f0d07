"""tls-alpn-01 against a real pebble: placeholder, issuance on a running
server with 4 workers, one order and one account, key files, the acme-tls/1
handshake, restart reusing account and certificate.

Pebble keeps its default badNonce rejection (5 % of good nonces,
PEBBLE_WFE_NONCEREJECT left unset) here: the order must get through it.
test_acme_badnonce.py makes every request meet a badNonce.
"""

import json
import os
import re
import stat

import pytest

from acme_helpers import (is_issued, kore_on_pebble, on_every_worker, pid_and_serial,
                          served_cert, start_kore, verified_get, with_ports)
from acme_pebble import Pebble, Ports
from kore_testing import wait_for

pytestmark = pytest.mark.slow
AS_ROOT = os.geteuid() == 0
WORKERS = 4


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    work = tmp_path_factory.mktemp("acme-alpn")
    ports = Ports()
    pebble = Pebble(work / "pebble", http_port=ports.take(), tls_port=ports.take(),
                    nonce_reject=None, ports=ports).start()
    extra = {"T_RUNAS": "nobody"} if AS_ROOT else {}
    srv = None
    try:
        srv, tls_port = kore_on_pebble(work, ports, pebble, workers=WORKERS, **extra)
        assert wait_for(lambda: is_issued(tls_port, pebble.root_path), timeout=60), \
            srv.log() + pebble.log()[-3000:]
        yield {"work": work, "port": tls_port, "pebble": pebble, "srv": srv,
               "extra": extra, "ports": ports}
    finally:
        if srv is not None:
            srv.cleanup()
        pebble.stop()
        ports.close()


def test_placeholder_logged_then_chain_verifies_against_the_ca_root(env):
    log = env["srv"].log()
    assert "localhost has no certificate yet: serving a self-signed placeholder" in log
    assert re.search(r"certificate for localhost issued: serial [0-9a-f]+", log)
    body = verified_get(env["port"], env["pebble"].root_path)
    assert body.startswith(b"HTTP/1.1 200") and b"hello from" in body


def test_every_worker_serves_the_issued_chain_without_a_restart(env):
    srv = env["srv"]
    log = srv.log()
    # each worker loaded the chain while running (from the master's message)
    for w in range(1, WORKERS + 1):
        assert "[wrk %d] info: acme: new certificate for localhost in use" % w in log
    # ... and none was restarted to get it: each worker started once
    ready = re.findall(r"worker (\d) \(pid \d+\) ready", log)
    assert sorted(ready) == [str(w) for w in range(1, WORKERS + 1)], ready
    # every worker's handshakes verify against pebble's root, same chain
    seen = on_every_worker(lambda: pid_and_serial(env["port"], env["pebble"].root_path),
                           srv.children())
    assert len({serial for serials in seen.values() for serial in serials}) == 1
    leaf, _ = served_cert(env["port"])
    assert leaf.issuer.rfc4514_string().startswith("CN=Pebble Intermediate CA")


def test_one_order_and_one_account_whatever_the_workers(env):
    plog = env["pebble"].log()
    assert plog.count("Added order") == 1, plog
    assert len(re.findall(r"There are now \d+ accounts in memory", plog)) == 1
    assert "Starting 3 validations" in plog
    assert env["srv"].log().count("ordering a certificate for localhost") == 1


def test_account_registered_with_acme_email(env):
    """acme_email reaches the CA: the registration it returned (saved in
    acme_root) lists it as the contact."""
    saved = next((env["work"] / "acme-state" / "accounts").rglob("account.json"))
    regr = json.loads(saved.read_text())
    assert regr["body"]["contact"] == ["mailto:ops@localhost.test"], regr
    assert regr["uri"].startswith("https://127.0.0.1:%d/" % env["pebble"].port)


def test_keys_are_0600_and_no_worker_holds_them(env):
    root = env["work"] / "acme-state"
    keys = list(root.rglob("key.pem"))
    assert len(keys) == 2                       # the account's and the domain's
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 4                      # + account.json, fullchain.pem
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in [root] + [p for p in root.rglob("*") if p.is_dir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    workers = env["srv"].children()
    assert len(workers) == WORKERS
    for pid in workers:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            assert str(root) not in target, (pid, target)


@pytest.mark.skipif(not AS_ROOT, reason="workers drop to 'nobody' only when started as root")
def test_workers_cannot_open_the_key_files(env):
    """Workers run as runas ('nobody'), the master stays root: the state
    directory is the master's alone, and the workers still loaded the
    issued chain (test above) without opening anything in it."""
    root = env["work"] / "acme-state"
    paths = [p for p in root.rglob("*") if p.is_file()]
    assert len(paths) == 4
    for path in paths:
        body = verified_get(env["port"], env["pebble"].root_path, "/open?path=%s" % path)
        assert body.endswith(b"denied"), (path, body)
    for pid in env["srv"].children():
        with open("/proc/%d/status" % pid) as f:
            uid = [l.split()[1] for l in f if l.startswith("Uid:")][0]
        assert uid != "0", pid


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
    assert wait_for(lambda: victim not in srv.children()
                    and len(srv.children()) == WORKERS, timeout=20)
    assert srv.wait_log("restarting it", 10)
    assert wait_for(lambda: len(re.findall(r"worker \d \(pid \d+\) ready", srv.log()))
                    >= WORKERS + 1, timeout=20)
    # the new worker was forked from the master, which holds the new chain
    new = set(srv.children()) - {victim}
    on_every_worker(lambda: pid_and_serial(env["port"], env["pebble"].root_path), new)
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
    """A restart serves the stored certificate (no order); that the saved
    account is reused for the next order is in test_acme_challenge.py
    (master killed mid-order) and test_acme_badnonce.py."""
    srv, pebble = env["srv"], env["pebble"]
    before = served_cert(env["port"])[0].serial_number
    assert srv.stop() == 0
    # the port stays reserved (Ports) while nothing listens on it; the
    # stored certificate needs no validation, so any port would do
    again, port = with_ports(env["ports"], lambda p: (start_kore(
        env["work"], p, pebble.url, pebble.ca, workers=2, **env["extra"]), p),
        (env["port"],))
    try:
        assert again.wait_log("renewal at", timeout=20), again.log()
        log = again.log()
        assert "localhost: serving the stored certificate" in log
        assert "placeholder" not in log and "account registered" not in log
        assert served_cert(port)[0].serial_number == before
        assert verified_get(port, pebble.root_path).startswith(b"HTTP/1.1 200")
        plog = pebble.log()
        assert plog.count("Added order") == 1
        assert len(re.findall(r"There are now \d+ accounts in memory", plog)) == 1
    finally:
        again.cleanup()
