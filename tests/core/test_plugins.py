"""Plugins: a throwaway third-party distribution is built, installed and
discovered through its entry point; allow-lists; failures name the plugin."""

import os
import subprocess
import sys
import textwrap

import pytest

PLUGIN_PY = '''
"""A third-party kore plugin used by the test suite."""
import kore
from kore import hookimpl
from kore.config import Option


@hookimpl
def kore_config_options(registry):
    registry.add(Option("hello_greeting", "str", "hi", "what kore.hello() says",
                        owner="kore-plugin-hello"))


@hookimpl
def kore_namespace():
    return {"hello": lambda: kore.config.hello_greeting}


@hookimpl
def kore_worker_init(worker):
    kore.log(kore.LOG_INFO, "hello plugin init in worker %d" % worker.id)
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "kore-plugin-{name}"
version = "0.0.1"
dependencies = []

[project.entry-points."kore.plugins"]
{name} = "kore_{name}.plugin"

[tool.setuptools]
packages = ["kore_{name}"]
'''


def build_plugin(root, name, plugin_source):
    src = root / ("src-" + name)
    pkg = src / ("kore_" + name)
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(textwrap.dedent(plugin_source))
    (src / "pyproject.toml").write_text(PYPROJECT.format(name=name))
    return src


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """Install two throwaway plugin distributions into a private directory."""
    root = tmp_path_factory.mktemp("plugins")
    site = root / "site"
    good = build_plugin(root, "hello", PLUGIN_PY)
    bad = build_plugin(root, "broken", "import kore\nimport no_such_module_here\n")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--target", str(site), str(good), str(bad)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return site


@pytest.fixture(scope="module")
def example_site(tmp_path_factory):
    """The shipped examples/plugin-hello, installed as a user would."""
    from kore_testing import ROOT
    site = tmp_path_factory.mktemp("example") / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--target", str(site),
                        os.path.join(ROOT, "examples", "plugin-hello")],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return site


def env_with(site, **extra):
    e = {"PYTHONPATH": str(site), "KORE_PLUGINS": "", "KORE_DISABLE_PLUGIN_AUTOLOAD": ""}
    e.update(extra)
    return e


def test_third_party_plugin_discovered_and_hooks_run(plugin_site, kore_server):
    app = """
import kore
def kore_worker_configure():
    kore.log(kore.LOG_INFO, "plugin says " + kore.hello())
"""
    srv = kore_server(app, workers=1, bind=False,
                      env=env_with(plugin_site, KORE_PLUGINS="hello",
                                   KORE_HELLO_GREETING="bonjour"))
    assert srv.wait_log("plugin says bonjour"), srv.log()
    assert "hello plugin init in worker 1" in srv.log()
    assert srv.stop() == 0


def test_korectl_plugins_lists_hooks(plugin_site, korectl):
    r = korectl("plugins", env=env_with(plugin_site, KORE_PLUGINS="hello"))
    assert r.returncode == 0, r.stderr
    assert "hello  kore-plugin-hello 0.0.1" in r.stdout
    assert "kore_config_options, kore_namespace, kore_worker_init" in r.stdout


def test_failing_plugin_stops_startup_naming_it(plugin_site, korectl, tmp_path):
    app = tmp_path / "app.py"
    app.write_text("import kore\n")
    r = korectl("run", str(app), env=env_with(plugin_site, KORE_PLUGINS="hello,broken"))
    assert r.returncode == 2
    assert "plugin 'broken' (kore-plugin-broken 0.0.1" in r.stderr
    assert "No module named 'no_such_module_here'" in r.stderr


def test_allow_list_and_autoload_off(plugin_site, korectl, tmp_path):
    r = korectl("plugins", env=env_with(plugin_site, KORE_PLUGINS="nonesuch"))
    assert r.returncode == 2 and "'nonesuch'" in r.stderr and "hello" in r.stderr
    r = korectl("plugins", env=env_with(plugin_site, KORE_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert r.returncode == 0 and r.stdout.strip() == "no plugins loaded"
    r = korectl("plugins", env=env_with(plugin_site, KORE_DISABLE_PLUGIN_AUTOLOAD="1",
                                        KORE_PLUGINS="hello"))
    assert r.returncode == 0 and r.stdout.startswith("hello ")


def test_missing_plugin_name_names_package(plugin_site, korectl, tmp_path):
    app = tmp_path / "app.py"
    app.write_text("import kore\nkore.server('default', ip='127.0.0.1', port='1', tls=False)\n")
    r = korectl("run", str(app), env=env_with(plugin_site, KORE_PLUGINS="hello"))
    assert r.returncode == 4
    assert "pip install kore-plugin-http" in r.stderr
    r2 = subprocess.run([sys.executable, "-c", "import kore; kore.dbquery"],
                        capture_output=True, text=True, timeout=30,
                        env=dict(os.environ, KORE_PLUGINS="hello"))
    assert "kore-plugin-pgsql" in r2.stderr


def test_shipped_example_plugin_as_its_readme_runs_it(example_site, kore_server, korectl):
    """docs/writing-plugins.md and examples/plugin-hello/README.md: the
    plugin is listed with its hooks, its flag sets its option, the example
    app calls kore.hello()."""
    from kore_testing import ROOT
    env = env_with(example_site, KORE_PLUGINS="hello")
    r = korectl("plugins", env=env)
    assert r.returncode == 0, r.stderr
    assert "hello  kore-plugin-hello 0.1.0" in r.stdout
    assert "hooks: kore_config_options, kore_namespace, kore_worker_init" in r.stdout
    app = os.path.join(ROOT, "examples", "plugin-hello", "app.py")
    srv = kore_server(app, workers=1, bind=False, env=env,
                      args=["--hello-greeting", "bonjour"])
    assert srv.wait_log("the hello plugin says: bonjour"), srv.log()
    assert "hello plugin ready in worker 1" in srv.log()
    assert srv.stop() == 0


def test_trace_hooks_writes_every_hook_call(plugin_site, korectl):
    r = korectl("plugins", env=env_with(plugin_site, KORE_PLUGINS="hello",
                                        KORE_TRACE_HOOKS="1"))
    assert r.returncode == 0, r.stderr
    assert "kore_config_options [hook]" in r.stderr
    assert "finish kore_namespace --> [{'hello':" in r.stderr
    quiet = korectl("plugins", env=env_with(plugin_site, KORE_PLUGINS="hello"))
    assert "[hook]" not in quiet.stderr
