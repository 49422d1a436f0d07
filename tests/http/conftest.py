import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
sys.path.insert(0, HERE)


def _root_conftest():
    name = "kore_tests_root_conftest"
    mod = sys.modules.get(name)
    if mod is None:
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(os.path.dirname(HERE), "conftest.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules[name] = mod
    return mod


KoreServer = _root_conftest().KoreServer


def start_module_server(tmp_path_factory, app, **kw):
    tmp = tmp_path_factory.mktemp("srv")
    if not os.path.isabs(app) and "\n" not in app:
        app = os.path.join(APPS, app)
    return KoreServer(tmp, app, (), **kw)


@pytest.fixture(scope="module")
def main_server(tmp_path_factory):
    """One server running apps/main_app.py for a whole test module."""
    tmp = tmp_path_factory.mktemp("main")
    srv = KoreServer(tmp, os.path.join(APPS, "main_app.py"), (), workers=1,
                     env={"KORE_HTTP_BODY_DISK_OFFLOAD": "100000",
                          "KORE_HTTP_BODY_DISK_PATH": str(tmp / "bodies")})
    yield srv
    srv.cleanup()
