"""Helpers of the ACME tests: a korectl running tests/acme/apps/acme_app.py,
TLS clients that report which certificate they were served."""

import os
import re
import socket
import ssl
import threading
import time

from cryptography import x509

from kore_testing import KoreServer, PortTaken, read_to_eof, wait_port

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "acme_app.py")


def start_kore(workdir, tls_port, provider, ca=None, workers=2, **env):
    e = {"T_TLS_PORT": str(tls_port), "T_PROVIDER": provider, "T_CA": ca or "",
         "T_WORKERS": str(workers)}
    e.update({k: str(v) for k, v in env.items()})
    srv = KoreServer(workdir, APP, bind=False, wait=False, workers=None, env=e,
                     cwd=str(workdir))
    ports = [tls_port] + ([int(e["T_PLAIN_PORT"])] if e.get("T_PLAIN_PORT") else [])
    return listening(srv, ports)


def listening(srv, ports, timeout=30.0):
    """Wait until KoreServer ``srv`` has bound every port of ``ports`` (its
    ``server '...' listening on`` lines) and accepts; returns ``srv``.

    The log, not a connection: a process that took one of the ports would
    accept the connection for a server that exited.  Raises PortTaken
    (after stopping ``srv``) when it exited on a port in use: the caller
    may try again with other ports (with_ports), AssertionError otherwise."""
    deadline = time.monotonic() + timeout
    want = [re.compile(r"listening on https?://127\.0\.0\.1:%d\b" % p) for p in ports]
    while not all(rx.search(srv.log()) for rx in want):
        if srv.proc.poll() is not None or time.monotonic() > deadline:
            out = srv.log()
            srv.cleanup()
            if "address already in use" in out.lower():
                raise PortTaken(out)
            raise AssertionError("korectl did not listen on %s:\n%s" % (ports, out))
        time.sleep(0.05)
    for port in ports:
        if not wait_port("127.0.0.1", port, max(1.0, deadline - time.monotonic()),
                         srv.proc):
            out = srv.log()
            srv.cleanup()
            raise AssertionError("korectl logged port %d but does not accept:\n%s"
                                 % (port, out))
    return srv


def with_ports(ports, start, first, attempts=4):
    """``start(*first)``; while it raises PortTaken, ``start`` again with as
    many ports newly reserved from ``ports`` (acme_pebble.Ports).

    A reserved port cannot be bound by a process binding without
    SO_REUSEADDR or asking for port 0, nor become a source port; a process
    that picked the same port with free_port() before it was reserved and
    binds it with SO_REUSEADDR still can: then the test moves to new ports
    (telling pebble, whose challenge ports they are)."""
    current = tuple(first)
    for attempt in range(attempts):
        try:
            return start(*current)
        except PortTaken:
            if attempt == attempts - 1:
                raise
            current = tuple(ports.take() for _ in current)


_PEBBLE_CA = object()


def kore_on_pebble(workdir, ports, pebble, plain=False, ca=_PEBBLE_CA, workers=2,
                   **env):
    """start_kore() on pebble's challenge ports: its tlsPort, and its
    httpPort as the plain server's with ``plain``; ``ca`` defaults to the CA
    of pebble's HTTPS.  Returns (server, tls port); pebble moves to other
    ports when one was taken."""
    def start(tls_port, http_port):
        if (tls_port, http_port) != (pebble.tls_port, pebble.http_port):
            pebble.challenge_ports(http_port, tls_port)
        extra = dict(env, T_PLAIN_PORT=http_port) if plain else env
        srv = start_kore(workdir, tls_port, pebble.url,
                         pebble.ca if ca is _PEBBLE_CA else ca, workers=workers, **extra)
        return srv, tls_port
    return with_ports(ports, start, (pebble.tls_port, pebble.http_port))


def on_every_worker(get, workers, limit=400, batch=8):
    """Call ``get()`` (returning ``(worker pid, anything)``) in concurrent
    batches until each of the ``workers`` pids has answered; returns
    {pid: [anything, ...]}.  Which worker accepts is the kernel's choice,
    and on an idle machine one worker can win accept after accept, so
    several connections are kept pending at once."""
    workers = set(workers)
    seen, errors, done = {}, [], [0]
    lock = threading.Lock()

    def one():
        try:
            pid, value = get()
        except Exception as exc:       # reported below, with the others
            with lock:
                errors.append(repr(exc))
            return
        with lock:
            seen.setdefault(pid, []).append(value)

    while not workers <= set(seen) and done[0] < limit and not errors:
        threads = [threading.Thread(target=one) for _ in range(batch)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        done[0] += batch
    assert not errors, errors[:5]
    assert set(seen) <= workers, (sorted(seen), sorted(workers))
    assert workers <= set(seen), ("not every worker answered in %d requests" % limit,
                                  sorted(seen), sorted(workers))
    return seen


def pid_and_serial(port, cafile=None):
    """(worker pid, leaf serial) of a GET / over TLS (the app answers
    ``hello from PID``); with ``cafile`` the chain must verify against it
    and name localhost (ssl.SSLCertVerificationError otherwise)."""
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            serial = x509.load_der_x509_certificate(s.getpeercert(True)).serial_number
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = read_to_eof(s)
    if not data.startswith(b"HTTP/1.1 200"):
        raise AssertionError(data[:200])
    return int(data.rsplit(b"hello from ", 1)[1].strip()), serial


def served_cert(port, server_name="localhost", alpn=None, cafile=None):
    """(leaf x509.Certificate, negotiated ALPN, verified) of one handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            der = s.getpeercert(True)
            got = s.selected_alpn_protocol()
    return x509.load_der_x509_certificate(der), got


def verified_get(port, cafile, path="/", server_name="localhost"):
    """GET over TLS verifying the chain against ``cafile`` and the name;
    returns the response bytes (ssl.SSLCertVerificationError when not)."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                       % (path, server_name)).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk


def is_issued(port, cafile):
    try:
        return b"200 OK" in verified_get(port, cafile)
    except ssl.SSLError:
        return False
    except OSError:
        return False
