"""Helpers of the metrics tests: scrape, parse the text format, promtool."""

import re
import shutil
import socket
import subprocess

import httpx

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metrics_port(srv, timeout=30.0):
    """The port of a ``--metrics-bind 127.0.0.1:0`` server (logged by the master
    as ``metrics on http://127.0.0.1:PORT/metrics``)."""
    from kore_testing import wait_for
    rx = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")
    found = []

    def logged():
        m = rx.search(srv.log())
        if m:
            found.append(int(m.group(1)))
        return bool(found) or srv.proc.poll() is not None
    assert wait_for(logged, timeout) and found, srv.log()
    return found[0]


def scrape(port, client=None):
    c = client or httpx
    r = c.get("http://127.0.0.1:%d/metrics" % port, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return r.text


def parse(text):
    """[(name, {labels}, value)] of every sample line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = dict(LABEL.findall(m.group(3) or ""))
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def total(text, name, **want):
    """Sum of the samples of ``name`` whose labels include ``want``."""
    return sum(v for n, labels, v in parse(text)
               if n == name and all(labels.get(k) == x for k, x in want.items()))


def promtool_check(text):
    exe = shutil.which("promtool")
    assert exe, "promtool missing (Debian package prometheus, see system-packages.txt)"
    p = subprocess.run([exe, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr


def get_close(port, path, host="127.0.0.1"):
    """One GET on a new connection (HTTP/1.0 style, closed after): so the
    kernel spreads requests over the workers.  Returns (status, body)."""
    from kore_testing import read_to_eof
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                  % path.encode())
        data = read_to_eof(s)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
