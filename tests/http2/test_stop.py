"""Graceful stop and reload: GOAWAY(NO_ERROR, last stream id), in-flight
streams finish, newer streams are refused, then the connection closes."""

import signal
import time

import h2.errors
import pytest

from h2_helpers import start_h2
from kore_testing import wait_for
from h2client import H2Client

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("tls", [False, True])
def test_goaway_then_inflight_streams_finish(tmp_path_factory, pki, signo, tls):
    srv = start_h2(tmp_path_factory, pki, ["--http2-cleartext", "prior-knowledge"],
                   name="stop")
    try:
        c = H2Client(srv.tls_port if tls else srv.port, tls=tls)
        first = c.request("/")
        assert c.response(first)[0] == 200
        slow = c.request("/slow?ms=2500&marker=stop")
        # the handler is suspended in kore.suspend
        assert wait_for(lambda: (srv.marks / "stop.started").exists(), 15)
        t0 = time.monotonic()
        srv.send_signal(signo)
        assert c.until(lambda: c.goaway is not None, 15)
        code, last = c.goaway
        assert code == h2.errors.ErrorCodes.NO_ERROR and last == slow
        # a stream the server never saw before its GOAWAY is refused
        late = c.raw_request("/")
        status, _, body = c.response(slow, timeout=20)
        assert (status, body) == (200, b"slow")
        assert time.monotonic() - t0 >= 1.5      # it was not cut short
        c.until(lambda: late in c.resets or c.closed, 10)
        assert late in c.resets and c.resets[late] == h2.errors.ErrorCodes.REFUSED_STREAM \
            or c.closed
        assert c.until(lambda: c.closed, 15)    # then the connection closes
        c.close()
        if signo == signal.SIGTERM:
            srv.proc.wait(20)
            assert srv.proc.returncode == 0
        else:
            # the new worker serves HTTP/2
            c2 = H2Client(srv.tls_port if tls else srv.port, tls=tls)
            assert c2.response(c2.request("/"))[0] == 200
            c2.close()
    finally:
        srv.cleanup()
