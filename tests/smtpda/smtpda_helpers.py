"""Helpers for the smtpda tests: certificates, the sink process, spool reading."""

import datetime
import email
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time

from kore_testing import free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SINK = os.path.join(HERE, "smtp_sink.py")


def make_certs(directory, dns=("localhost",), ips=("127.0.0.1",)):
    """A CA and a server certificate for ``dns`` and ``ips`` (127.0.0.1 /
    localhost by default), as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("smtpda test CA"))
          .issuer_name(name("smtpda test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name(dns[0]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(d) for d in dns]
                + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    os.makedirs(directory, exist_ok=True)
    paths = {"ca": os.path.join(directory, "ca.pem"),
             "cert": os.path.join(directory, "server.pem"),
             "key": os.path.join(directory, "server.key")}
    with open(paths["ca"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


class SinkProc:
    """The aiosmtpd sink (smtp_sink.py) in its own process."""

    def __init__(self, directory, port=None, starttls=False, implicit_tls=False,
                 certs=None, auth=None, env=None):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self._pick_port = port is None      # ours to pick again if taken
        self._args(certs, starttls, implicit_tls, auth)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.start()

    def _args(self, certs, starttls, implicit_tls, auth):
        self._opts = (certs, starttls, implicit_tls, auth)
        self.args = ["--dir", self.dir, "--port", str(self.port)]
        if certs:
            self.args += ["--cert", certs["cert"], "--key", certs["key"]]
        if starttls:
            self.args.append("--starttls")
        if implicit_tls:
            self.args.append("--implicit-tls")
        if auth:
            self.args += ["--auth", auth]

    _started = False

    def start(self):
        logged = len(self.log())
        self.logf = open(os.path.join(self.dir, "sink.log"), "ab")
        self.proc = subprocess.Popen([sys.executable, SINK] + self.args, stdout=subprocess.PIPE,
                                     stderr=self.logf, env=self.env)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.stop()
            if (self._pick_port and not self._started
                    and "address already in use" in self.log()[logged:].lower()):
                # free when picked, bound by another process since: pick again
                # (only before the first start: a restart keeps the port)
                self.port = free_port()
                self._args(*self._opts)
                return self.start()
            raise AssertionError("SMTP sink did not start: %r\n%s" % (line, self.log()))
        self._started = True

    def log(self):
        try:
            with open(os.path.join(self.dir, "sink.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None:
            self.proc.stdout.close()
        self.logf.close()

    def control(self, **kw):
        tmp = os.path.join(self.dir, "control.json.tmp")
        with open(tmp, "w") as f:
            json.dump(kw, f)
        os.replace(tmp, os.path.join(self.dir, "control.json"))

    def timed_events(self):
        """``[(unix time, "data <message-id>" | "accepted <message-id>" |
        "auth <login>")]`` in the order the sink saw them."""
        try:
            with open(os.path.join(self.dir, "events.log")) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            t, _, text = line.partition(" ")
            out.append((float(t), text))
        return out

    def events(self):
        return [text for _, text in self.timed_events()]

    def messages(self):
        """``[(envelope dict, email.message.Message, raw bytes)]`` in arrival order."""
        d = os.path.join(self.dir, "received")
        out = []
        for name in sorted(os.listdir(d)):
            if not name.endswith(".eml"):
                continue
            base = os.path.join(d, name[:-4])
            if not os.path.exists(base + ".json"):
                continue
            with open(base + ".json") as f:
                meta = json.load(f)
            with open(base + ".eml", "rb") as f:
                raw = f.read()
            out.append((meta, email.message_from_bytes(raw), raw))
        return out

    def wait_messages(self, n, timeout=30.0):
        if not wait_for(lambda: len(self.messages()) >= n, timeout):
            raise AssertionError("sink got %d of %d messages" % (len(self.messages()), n))
        return self.messages()


def spool_files(spool, queue):
    d = os.path.join(str(spool), queue)
    try:
        return sorted(f for f in os.listdir(d) if f.endswith(".msg"))
    except FileNotFoundError:
        return []


def read_env(spool, queue, name):
    with open(os.path.join(str(spool), queue, name), "rb") as f:
        f.readline()
        return json.loads(f.readline())


def wait_spool(spool, queue, n, timeout=30.0):
    if not wait_for(lambda: len(spool_files(spool, queue)) == n, timeout):
        raise AssertionError("%s/%s holds %d files, expected %d"
                             % (spool, queue, len(spool_files(spool, queue)), n))


def now():
    return time.monotonic()


def metrics_port(srv, timeout=30.0):
    """The port of a ``--metrics-bind 127.0.0.1:0`` server (the master logs
    ``metrics on http://127.0.0.1:PORT/metrics``)."""
    import re
    found = []

    def logged():
        m = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", srv.log())
        if m:
            found.append(int(m.group(1)))
        return bool(found) or srv.proc.poll() is not None
    assert wait_for(logged, timeout) and found, srv.log()
    return found[0]
