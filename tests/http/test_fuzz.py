"""Random bytes and mutated requests never crash a worker: the worker that
served the first request serves the last one, and the log has no traceback
and no respawn (a crashed worker would be respawned and answer again)."""

import socket

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kh_util import request

VALID = (b"POST /echo?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
         b"Transfer-Encoding: chunked\r\nCookie: a=b\r\n\r\n5\r\nhello\r\n0\r\n\r\n")


def _send(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(3)
            while s.recv(65536):
                pass
        except OSError:
            pass


def _alive(port):
    r, _ = request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                   check_closed=False)
    return r is not None and r.status == 200


@pytest.fixture(scope="module")
def fuzz_server(main_server):
    """main_server, with the pid of its only worker recorded."""
    main_server.wait_ready(1)
    children = main_server.children()
    assert len(children) == 1, children
    main_server.worker_pid = children[0]
    yield main_server
    _healthy(main_server)


def _healthy(srv):
    log = srv.log()
    assert "restarting it" not in log, log
    assert "failed to boot" not in log, log
    # the app's deliberate handler error (a route raising ValueError("boom"))
    # is logged with a traceback by design; nothing else may be
    assert log.count("Traceback") <= log.count("ValueError: boom"), log
    assert srv.children() == [srv.worker_pid], (srv.children(), log)


mutations = st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.binary(min_size=0, max_size=4)),
                     min_size=1, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(min_size=0, max_size=600))
def test_random_bytes(fuzz_server, data):
    _send(fuzz_server.port, data)
    assert _alive(fuzz_server.port)
    _healthy(fuzz_server)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(muts=mutations)
def test_mutated_requests(fuzz_server, muts):
    data = bytearray(VALID)
    for pos, repl in muts:
        data[pos:pos + 1] = repl
    _send(fuzz_server.port, bytes(data))
    assert _alive(fuzz_server.port)
    _healthy(fuzz_server)
