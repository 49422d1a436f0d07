"""Renewal: a stored certificate past its renewal point (acme_renew_before)
is kept in service while the CA is down (back-off, the log names the next
attempt), then replaced on the running server when the CA comes back, in
every worker, with two load loops seeing 0 errors and an open connection
kept; without the option the 2/3 rule (1/2 under 10 days) sets the renewal
time of the same certificate."""

import datetime
import os
import re
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acme_helpers import (kore_on_pebble, on_every_worker, pid_and_serial, served_cert,
                          start_kore, with_ports)
from acme_pebble import Pebble, Ports
from kore_testing import wait_for

pytestmark = pytest.mark.slow


def seed_certificate(workdir, days_before=15, days_after=15):
    """A localhost certificate from a throwaway CA, stored where the plugin
    keeps its own (as if issued earlier); returns its serial."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old test CA")])
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=days_before))
            .not_valid_after(now + datetime.timedelta(days=days_after))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    d = workdir / "acme-state" / "certificates" / "localhost"
    d.mkdir(parents=True)
    for name, data in (("fullchain.pem", cert.public_bytes(serialization.Encoding.PEM)),
                       ("key.pem", key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))):
        fd = os.open(str(d / name), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, data)
        os.close(fd)
    return cert.serial_number


def _insecure():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return head, body


class LoadLoop(threading.Thread):
    """New TLS connections + GET in a loop (bounded); records serials and
    when each was seen."""

    def __init__(self, port, limit=4000, seconds=90):
        super().__init__(daemon=True)
        self.port, self.limit, self.seconds = port, limit, seconds
        self.errors, self.serials, self.times, self.done = [], [], [], 0
        self.stop = threading.Event()

    def run(self):
        ctx = _insecure()
        end = time.monotonic() + self.seconds
        while not self.stop.is_set() and self.done < self.limit and time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                        serial = x509.load_der_x509_certificate(s.getpeercert(True)).serial_number
                        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                        head, _ = _read_response(s)
                        if not head.startswith(b"HTTP/1.1 200"):
                            self.errors.append(head[:40])
                        self.times.append(time.monotonic())
                        self.serials.append(serial)
            except (OSError, ssl.SSLError) as exc:
                self.errors.append(repr(exc))
            self.done += 1


@pytest.fixture
def ports():
    with Ports() as p:
        yield p


def test_renewal_with_the_ca_down_then_back(tmp_path, ports):
    old = seed_certificate(tmp_path)
    # pebble's ports are reserved now (kore is told its URL), it starts later
    pebble = Pebble(tmp_path / "pebble", http_port=ports.take(), tls_port=ports.take(),
                    ports=ports)
    srv, tls_port = kore_on_pebble(tmp_path, ports, pebble, workers=2,
                                   T_RENEW_BEFORE="20d", T_RETRY_MIN=1, T_RETRY_MAX=4)
    loads = []
    try:
        assert srv.wait_log("localhost: serving the stored certificate", 10)
        # the CA is down: the current certificate stays, retries back off
        assert srv.wait_log("(attempt 3)", 30), srv.log()
        log = srv.log()
        assert re.search(r"order for localhost failed \(attempt 1\): cannot reach the CA.*"
                         r"still serving the current certificate \(valid until .*\); "
                         r"next attempt in 1 s \(at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", log), log
        assert "(attempt 2)" in log and "next attempt in 2 s" in log
        assert "next attempt in 4 s" in log
        assert served_cert(tls_port)[0].serial_number == old

        # an open keep-alive connection from before the swap
        keep = _insecure().wrap_socket(socket.create_connection(("127.0.0.1", tls_port),
                                                                timeout=10),
                                       server_hostname="localhost")
        keep.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert _read_response(keep)[0].startswith(b"HTTP/1.1 200")

        loads = [LoadLoop(tls_port), LoadLoop(tls_port)]
        for load in loads:
            load.start()
        assert wait_for(lambda: all(load.done >= 5 for load in loads), timeout=30)
        pebble.start()
        assert wait_for(lambda: all(load.serials and load.serials[-1] != old
                                    for load in loads), timeout=60), srv.log()
        n = [load.done for load in loads]
        assert wait_for(lambda: all(load.done >= m + 20 for load, m in zip(loads, n)),
                        timeout=30)
        for load in loads:
            load.stop.set()
            load.join(20)
        new = loads[0].serials[-1]
        swapped = min(t for load in loads for t, s in zip(load.times, load.serials)
                      if s == new)
        for load in loads:
            # 0 errors, before, during and after the swap
            assert load.errors == [], load.errors[:5]
            assert old in load.serials              # the swap happened during the loop
            assert set(load.serials) == {old, new}
            # once a worker serves the new certificate the others follow at
            # once (the master sends it to all): no old one seconds later
            late = [t - swapped for t, s in zip(load.times, load.serials)
                    if s == old and t > swapped + 5]
            assert not late, late[:5]
        assert "renewing the certificate for localhost" in srv.log()
        # every worker serves the new chain, and it verifies against the CA
        seen = on_every_worker(lambda: pid_and_serial(tls_port, pebble.root_path),
                               srv.children())
        assert {s for serials in seen.values() for s in serials} == {new}
        assert srv.log().count("info: acme: new certificate for localhost in use") == 2

        # the open connection was not dropped and still talks
        keep.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert _read_response(keep)[0].startswith(b"HTTP/1.1 200")
        assert x509.load_der_x509_certificate(keep.getpeercert(True)).serial_number == old
        keep.close()
        assert pebble.log().count("Added order") == 1
    finally:
        for load in loads:
            load.stop.set()
        srv.cleanup()
        pebble.stop()


@pytest.mark.parametrize("before,after,renew_in", [
    (15, 15, 5),        # 30 days, half gone: at 2/3, in 5 days
    (1, 5, 2),          # 6 days (under 10): at 1/2, in 2 days
])
def test_default_renewal_time_of_a_fresh_certificate(tmp_path, ports, before, after,
                                                     renew_in):
    old = seed_certificate(tmp_path, days_before=before, days_after=after)
    # nothing listens on the provider's (reserved) port: no order may be tried
    provider = "https://127.0.0.1:%d/dir" % ports.take()
    srv, tls_port = with_ports(ports, lambda p: (start_kore(tmp_path, p, provider,
                                                            workers=1), p),
                               (ports.take(),))
    try:
        assert srv.wait_log("renewal at", 15), srv.log()
        line = [l for l in srv.log().splitlines() if "renewal at" in l][0]
        when = datetime.datetime.strptime(line.rsplit("renewal at ", 1)[1],
                                          "%Y-%m-%d %H:%M:%S UTC")
        expected = datetime.datetime.utcnow() + datetime.timedelta(days=renew_in)
        assert abs((when - expected).total_seconds()) < 120
        assert "ordering" not in srv.log() and "renewing" not in srv.log()
        assert served_cert(tls_port)[0].serial_number == old
    finally:
        srv.cleanup()
