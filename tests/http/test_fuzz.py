"""Random bytes and mutated requests never crash a worker."""

import socket

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


mutations = st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.binary(min_size=0, max_size=4)),
                     min_size=1, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(min_size=0, max_size=600))
def test_random_bytes(main_server, data):
    _send(main_server.port, data)
    assert _alive(main_server.port)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(muts=mutations)
def test_mutated_requests(main_server, muts):
    data = bytearray(VALID)
    for pos, repl in muts:
        data[pos:pos + 1] = repl
    _send(main_server.port, bytes(data))
    assert _alive(main_server.port)
    assert "Traceback" not in main_server.log() or "ValueError: boom" in main_server.log()
