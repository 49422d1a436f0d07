"""A real pebble ACME CA on loopback for the tests (Debian package ``pebble``).

The package ships no usable certificate for pebble's own HTTPS listener, so
``Pebble`` makes a throwaway CA and a ``localhost`` certificate with
``cryptography``, writes a loopback config whose ``httpPort`` / ``tlsPort``
are the kore server's ports (pebble validates there), starts ``pebble`` and
fetches the issuing root (regenerated at every start).

Pebble cannot bind port 0 and report the port, and it must know the kore
server's challenge ports before that server starts, so those ports are
picked in advance.  ``Ports`` keeps each one reserved until the test ends:
a socket bound to it with SO_REUSEADDR and never listening.  The kernel
gives a bound port neither to another ``bind(port 0)`` nor as the source
port of an outgoing connection, while korectl and pebble (both set
SO_REUSEADDR) can still bind and listen on it: nothing else on the machine
can take the port between the pick and the bind, or between a server's
stop and its restart.
"""

import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kore_testing import wait_for

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_tls_ca(directory):
    """(ca.pem, cert.pem, key.pem) for pebble's own HTTPS listener."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble-tls-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                       False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = [os.path.join(directory, n) for n in ("pebble-tls-ca.pem", "pebble-tls.pem",
                                                   "pebble-tls.key")]
    for path, data in zip(paths, (_pem(ca), _pem(cert), _key_pem(key))):
        with open(path, "wb") as f:
            f.write(data)
    return paths


class Ports:
    """Loopback TCP ports reserved for one test (see the module's docstring).

    ``take()`` returns a port nobody else can bind or connect from until
    ``close()``; the test's own servers bind it with SO_REUSEADDR."""

    def __init__(self):
        self._socks = []

    def take(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        self._socks.append(s)
        return s.getsockname()[1]

    def close(self):
        for s in self._socks:
            s.close()
        del self._socks[:]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Pebble:
    """``nonce_reject``: PEBBLE_WFE_NONCEREJECT, the percentage of good
    nonces rejected with badNonce; None leaves pebble's default (5 %)."""

    def __init__(self, directory, http_port, tls_port, nonce_reject=0, env=None,
                 ports=None):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.ca, self._cert, self._key = make_tls_ca(self.dir)
        self.http_port = http_port
        self.tls_port = tls_port
        self.config = os.path.join(self.dir, "pebble-config.json")
        self._ports = ports if ports is not None else Ports()
        self._own_ports = ports is None
        self._configure()
        self.env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0"}
        if nonce_reject is not None:
            self.env["PEBBLE_WFE_NONCEREJECT"] = str(nonce_reject)
        self.env.update(env or {})
        # a variable of the environment the tests run in must not change
        # pebble's default
        self._unset = () if nonce_reject is not None else ("PEBBLE_WFE_NONCEREJECT",)
        self.logpath = os.path.join(self.dir, "pebble.log")
        self.proc = None
        self._logf = None
        self.root_pem = None

    def _configure(self):
        """Pick pebble's two ports (it cannot bind port 0 and report it),
        reserved until ``stop(final=True)``."""
        self.port = self._ports.take()
        self.mgmt = self._ports.take()
        self._write_config()

    def challenge_ports(self, http_port, tls_port):
        """Validate on these ports from now on (the kore server could not
        bind the earlier ones); a running pebble restarts (a new root)."""
        self.http_port, self.tls_port = http_port, tls_port
        self._write_config()
        if self.proc is not None and self.proc.poll() is None:
            self.stop(final=False)
            self._start() or self._fail()
            self._fetch_root()
        return self

    def _fail(self):
        raise AssertionError("pebble did not start:\n" + self.log())

    def _write_config(self):
        with open(self.config, "w") as f:
            json.dump({"pebble": {
                "listenAddress": "127.0.0.1:%d" % self.port,
                "managementListenAddress": "127.0.0.1:%d" % self.mgmt,
                "certificate": self._cert, "privateKey": self._key,
                "httpPort": self.http_port, "tlsPort": self.tls_port,
                "ocspResponderURL": "", "externalAccountBindingRequired": False}}, f)
        self.url = "https://127.0.0.1:%d/dir" % self.port

    _started = False

    def start(self, attempts=5):
        for attempt in range(attempts):
            logged = len(self.log())
            if self._start():
                self._started = True
                return self._fetch_root()
            new = self.log()[logged:]
            self.stop(final=False)
            # the ports are reserved, but should a port picked have been
            # bound by another process anyway: pick again (before the first
            # start only: clients know the URL)
            if (self._started or attempt == attempts - 1
                    or "address already in use" not in new.lower()):
                self._fail()
            self._configure()

    def _start(self):
        e = dict(os.environ)
        for name in self._unset:
            e.pop(name, None)
        e.update(self.env)
        self._logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen([PEBBLE, "-config", self.config, "-strict"],
                                     stdout=self._logf, stderr=subprocess.STDOUT,
                                     env=e, cwd=self.dir, start_new_session=True)
        ctx = ssl.create_default_context(cafile=self.ca)

        def up():
            try:
                urllib.request.urlopen(self.url, context=ctx, timeout=2).read()
                return True
            except OSError:
                return False
        # up() checks pebble's own certificate: another process on the port
        # does not pass for pebble
        wait_for(lambda: up() or self.proc.poll() is not None, timeout=20)
        return self.proc.poll() is None and up()

    def _fetch_root(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        with urllib.request.urlopen("https://127.0.0.1:%d/roots/0" % self.mgmt,
                                    context=ctx, timeout=5) as r:
            self.root_pem = r.read()
        self.root_path = os.path.join(self.dir, "pebble-root-%d.pem" % self.port)
        with open(self.root_path, "wb") as f:
            f.write(self.root_pem)
        return self

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def count(self, text):
        return self.log().count(text)

    def stop(self, final=True):
        """Stop pebble; ``final=False`` keeps its ports reserved (it is
        started again later by the test)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._logf is not None:
            self._logf.close()
            self._logf = None
        if final and self._own_ports:
            self._ports.close()


def wait_until(pred, timeout, what):
    if not wait_for(pred, timeout=timeout, step=0.1):
        raise AssertionError("timed out waiting for " + what)


def now():
    return time.monotonic()
