"""Helpers shared by the curl tests."""

import socket


_HELD = []


def closed_port():
    """A loopback port nothing listens on: held by a bound socket that never
    listens (a connection is refused) for the rest of the test run, so no
    other process can start listening on it meanwhile."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


def wait_port(host, port, timeout, proc=None):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False
