import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


from kh_util import APPS, start_module_server  # noqa: F401
from kore_testing import KoreServer


@pytest.fixture(scope="module")
def main_server(tmp_path_factory):
    """One server running apps/main_app.py for a whole test module."""
    tmp = tmp_path_factory.mktemp("main")
    srv = KoreServer(tmp, os.path.join(APPS, "main_app.py"), (), workers=1,
                     env={"KORE_HTTP_BODY_DISK_OFFLOAD": "100000",
                          "KORE_HTTP_BODY_DISK_PATH": str(tmp / "bodies")})
    yield srv
    srv.cleanup()
