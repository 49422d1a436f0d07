import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


from kh_proto import H2C_ENV, HAVE_HTTP2, PROTOCOLS  # noqa: E402
from kh_util import APPS, start_module_server  # noqa: F401,E402
from kore_testing import KoreServer  # noqa: E402


@pytest.fixture(scope="module", params=PROTOCOLS)
def proto(request):
    """The protocol a test runs over: "h1" (HTTP/1.1) or "h2c" (HTTP/2 by prior
    knowledge); module-scoped, so a module's server serves both in turn."""
    if request.param != "h1" and not HAVE_HTTP2:
        pytest.skip("kore-plugin-http2 is not installed (HTTP/2 runs of this test)")
    return request.param


@pytest.fixture(scope="module")
def main_server(tmp_path_factory):
    """One server running apps/main_app.py for a whole test module (HTTP/1.1,
    and h2c by prior knowledge from loopback)."""
    tmp = tmp_path_factory.mktemp("main")
    env = {"KORE_HTTP_BODY_DISK_OFFLOAD": "100000",
           "KORE_HTTP_BODY_DISK_PATH": str(tmp / "bodies")}
    env.update(H2C_ENV)
    srv = KoreServer(tmp, os.path.join(APPS, "main_app.py"), (), workers=1, env=env)
    yield srv
    srv.cleanup()
