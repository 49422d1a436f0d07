"""examples/proxy runs under korectl and balances 2:1."""

import os

from kore_testing import KoreServer, started_on, with_free_ports
from px_util import get

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(ROOT, "examples", "proxy", "app.py")


def test_example(tmp_path):
    # the app names its upstreams' ports in its configuration: picked before
    # it starts, picked again if another process took one meanwhile
    def start(port, up1, up2):
        srv = KoreServer(tmp_path, APP, workers=1, bind=False,
                         env={"PORT": str(port), "UP1": str(up1), "UP2": str(up2)})
        srv.port = port
        return started_on(srv, (port, up1, up2))
    srv = with_free_ports(3, start)
    port = srv.port
    try:
        assert get(port, "/")[2] == b"the proxy itself\n"
        bodies = [get(port, "/api/hello")[2] for _ in range(30)]
        assert bodies.count(b"one got /hello\n") == 20
        assert bodies.count(b"two got /hello\n") == 10
        assert get(port, "/v1/x")[2] in (b"one got /api/v1/x\n", b"two got /api/v1/x\n")
    finally:
        srv.cleanup()
