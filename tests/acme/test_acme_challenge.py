"""While a tls-alpn-01 challenge is pending, only handshakes offering ALPN
acme-tls/1 for that name get the challenge certificate; everybody else
keeps getting the domain's (here the placeholder).

Pebble validates through a loopback relay that holds its first connection
until the test has looked, so the challenge stays pending as long as needed.
"""

import re
import socket
import threading

import pytest
from cryptography import x509

from acme_helpers import is_issued, served_cert, start_kore, with_ports
from acme_pebble import Pebble, Ports
from kore_testing import wait_for

pytestmark = pytest.mark.slow
ACME_ID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


class HoldingRelay(threading.Thread):
    """Accepts on ``port``; the first connection waits for ``release`` before
    being relayed to ``target``, later ones are relayed at once."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.first = threading.Event()
        self.release = threading.Event()
        self.count = 0

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            threading.Thread(target=self._relay, args=(c, self.count == 1),
                             daemon=True).start()

    def _relay(self, c, hold):
        if hold:
            self.first.set()
            self.release.wait(30)
        try:
            u = socket.create_connection(("127.0.0.1", self.target), timeout=10)
        except OSError:
            c.close()
            return

        def pump(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        t = threading.Thread(target=pump, args=(u, c), daemon=True)
        t.start()
        pump(c, u)
        t.join(10)
        c.close()
        u.close()

    def close(self):
        self.release.set()
        self.sock.close()


def _has_acme_id(cert):
    try:
        ext = cert.extensions.get_extension_for_oid(ACME_ID)
    except x509.ExtensionNotFound:
        return False
    return ext.critical


def _kore_behind(relay, workdir, pebble, workers):
    """start(port) for with_ports: korectl on ``port``, the relay to it."""
    def start(port):
        relay.target = port
        return start_kore(workdir, port, pebble.url, pebble.ca, workers=workers), port
    return start


@pytest.fixture
def ports():
    with Ports() as p:
        yield p


def test_challenge_certificate_only_for_acme_tls_handshakes(tmp_path, ports):
    tls_port = ports.take()
    relay = HoldingRelay(tls_port)
    relay.start()
    pebble = Pebble(tmp_path / "pebble", http_port=ports.take(), tls_port=relay.port,
                    ports=ports).start()
    srv = None
    try:
        srv, tls_port = with_ports(ports, _kore_behind(relay, tmp_path, pebble, 2),
                                   (tls_port,))
        assert relay.first.wait(30), srv.log() + pebble.log()[-2000:]
        # the challenge is published in both workers before the CA is told
        # to validate; look at it from several connections (both workers)
        for _ in range(8):
            cert, alpn = served_cert(tls_port, alpn=["acme-tls/1"])
            assert alpn == "acme-tls/1" and _has_acme_id(cert)
            names = cert.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
            assert names == ["localhost"]
            normal, alpn = served_cert(tls_port, alpn=["h2", "http/1.1"])
            # h2 when kore-plugin-http2 is installed too
            assert alpn in ("h2", "http/1.1") and not _has_acme_id(normal)
            assert normal.issuer == normal.subject         # the placeholder
            plain, _ = served_cert(tls_port)
            assert not _has_acme_id(plain)
            other, _ = served_cert(tls_port, server_name="other.test", alpn=["acme-tls/1"])
            assert not _has_acme_id(other)
        # a worker restarted while the challenge is pending asks the master
        # for it (acme.hello) and serves it too
        import os
        import signal
        victim = srv.children()[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: len(re.findall(r"worker \d \(pid \d+\) ready",
                                               srv.log())) >= 3, timeout=20), srv.log()
        for _ in range(8):
            cert, alpn = served_cert(tls_port, alpn=["acme-tls/1"])
            assert alpn == "acme-tls/1" and _has_acme_id(cert)
        relay.release.set()
        assert wait_for(lambda: is_issued(tls_port, pebble.root_path), timeout=60), \
            srv.log() + pebble.log()[-2000:]
        after, alpn = served_cert(tls_port, alpn=["acme-tls/1"])
        assert not _has_acme_id(after) and "Pebble" in after.issuer.rfc4514_string()
        assert relay.count >= 3                           # pebble's three validations
    finally:
        relay.close()
        if srv is not None:
            srv.cleanup()
        pebble.stop()


def test_master_killed_mid_order_then_restarted(tmp_path, ports):
    """SIGKILL of the whole server while the CA validates: the restarted
    server reuses the saved account (the CA sees one account, two orders)
    and completes a new order."""
    tls_port = ports.take()
    relay = HoldingRelay(tls_port)
    relay.start()
    pebble = Pebble(tmp_path / "pebble", http_port=ports.take(), tls_port=relay.port,
                    ports=ports).start()
    srv = again = None
    try:
        srv, tls_port = with_ports(ports, _kore_behind(relay, tmp_path, pebble, 1),
                                   (tls_port,))
        assert relay.first.wait(30), srv.log()
        srv.kill()                                  # SIGKILL, master and workers
        assert not (tmp_path / "acme-state" / "certificates" / "localhost" /
                    "fullchain.pem").exists()
        relay.release.set()
        # the port stayed reserved; should it be taken anyway, the relay
        # (pebble's tlsPort) forwards to the new one
        again, tls_port = with_ports(ports, _kore_behind(relay, tmp_path, pebble, 1),
                                     (tls_port,))
        assert wait_for(lambda: is_issued(tls_port, pebble.root_path), timeout=60), \
            again.log() + pebble.log()[-2000:]
        log = again.log()
        assert "serving a self-signed placeholder" in log
        assert "account registered" not in log      # the saved account is reused
        plog = pebble.log()
        assert plog.count("Added order") == 2
        assert len(re.findall(r"There are now \d+ accounts in memory", plog)) == 1, plog
    finally:
        relay.close()
        if srv is not None:
            srv.cleanup()
        if again is not None:
            again.cleanup()
        pebble.stop()
