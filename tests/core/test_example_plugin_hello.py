"""examples/plugin-hello as shipped: built and installed into a private
directory, discovered through its entry point, its flag and option work and
its app answers with the greeting."""

import os
import subprocess
import sys

import httpx

from kore_testing import KoreServer, ROOT

EXAMPLE = os.path.join(ROOT, "examples", "plugin-hello")


def test_shipped_plugin_hello_example(tmp_path):
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--target", str(site), EXAMPLE],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    env = {"PYTHONPATH": str(site)}
    srv = KoreServer(tmp_path, os.path.join(EXAMPLE, "app.py"), env=env,
                     args=("--hello-greeting", "bonjour"))
    try:
        r = httpx.get(srv.url + "/", timeout=10)
        assert r.status_code == 200 and r.text == "bonjour"
        assert srv.wait_log("hello plugin ready in worker 1")
    finally:
        srv.cleanup()
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "korectl"),
                          "plugins"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(site)))
    assert "hello  kore-plugin-hello 0.1.0" in out.stdout
    assert "kore_config_options, kore_namespace, kore_worker_init" in out.stdout
