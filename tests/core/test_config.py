"""kore.config: validation, precedence, sources, error messages."""

import pytest

from kore.config import ConfigError, ConfigProxy, Option, Registry, kernel_options

NOPLUG = {"KORE_DISABLE_PLUGIN_AUTOLOAD": "1"}


@pytest.fixture
def reg():
    r = Registry()
    for opt in kernel_options():
        r.add(opt)
    return r


def test_defaults_are_kores(reg):
    import os
    assert reg.get("workers") == (os.cpu_count() or 1)
    assert reg.get("worker_max_connections") == 512
    assert reg.get("worker_rlimit_nofiles") == 768
    assert reg.get("worker_accept_threshold") == 16
    assert reg.get("worker_death_policy") == "restart"
    assert reg.get("socket_backlog") == 5000
    assert reg.get("deployment") == "dev"
    assert reg.source("workers") == "default"


def test_yes_no_accepts_python_bools(reg):
    cfg = ConfigProxy(reg)
    cfg.seccomp_tracing = True
    assert cfg.seccomp_tracing is True
    cfg.seccomp_tracing = "no"
    assert cfg.seccomp_tracing is False
    with pytest.raises(ConfigError) as e:
        cfg.seccomp_tracing = "maybe"
    assert "seccomp_tracing" in str(e.value) and '"yes" or "no"' in str(e.value)


def test_int_validation_names_option(reg):
    cfg = ConfigProxy(reg)
    cfg.workers = "3"
    assert cfg.workers == 3
    for bad in ("many", 0, True, 2.5):
        with pytest.raises(ConfigError) as e:
            cfg.workers = bad
        assert "'workers'" in str(e.value) and "integer >= 1" in str(e.value)


def test_choice_lists_valid_values(reg):
    cfg = ConfigProxy(reg)
    cfg.deployment = "development"
    assert cfg.deployment == "dev"
    with pytest.raises(ConfigError) as e:
        cfg.worker_death_policy = "respawn"
    assert "'restart', 'terminate'" in str(e.value)


def test_unknown_option_suggests_close_match(reg):
    cfg = ConfigProxy(reg)
    with pytest.raises(ConfigError) as e:
        cfg.worker = 2
    assert "unknown option 'worker'" in str(e.value) and "'workers'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        cfg.pgsql_conn_max = 4
    assert "kore-plugin-pgsql" in str(e.value)


def test_precedence_cli_env_app_default(reg):
    reg.set("workers", 2, "app")
    assert (reg.get("workers"), reg.source("workers")) == (2, "app")
    reg.load_env({"KORE_WORKERS": "3"})
    assert (reg.get("workers"), reg.source("workers")) == (3, "env")
    reg.set("workers", "4", "cli")
    assert (reg.get("workers"), reg.source("workers")) == (4, "cli")
    reg.set("workers", 9, "app")      # app code cannot override the operator
    assert reg.get("workers") == 4


def test_bad_env_value_names_variable(reg):
    with pytest.raises(ConfigError) as e:
        reg.load_env({"KORE_SOCKET_BACKLOG": "lots"})
    assert "KORE_SOCKET_BACKLOG" in str(e.value) and "socket_backlog" in str(e.value)


def test_frozen_after_start(reg):
    reg.frozen = True
    with pytest.raises(RuntimeError, match="cannot be changed at runtime"):
        ConfigProxy(reg).workers = 1


def test_plugin_declared_option(reg):
    reg.add(Option("http_body_max", "int", 1024000, owner="kore-plugin-http", minimum=0))
    ConfigProxy(reg).http_body_max = 10
    assert reg.get("http_body_max") == 10
    with pytest.raises(ConfigError, match="declared twice"):
        reg.add(Option("http_body_max", "int", 1))


def test_korectl_config_show_sources(korectl, tmp_path):
    app = tmp_path / "app.py"
    app.write_text("import kore\nkore.config.workers = 3\nkore.config.socket_backlog = 100\n")
    r = korectl("config", "show", "--backlog", "200", str(app),
                env=dict(NOPLUG, KORE_WORKER_DEATH_POLICY="terminate"))
    assert r.returncode == 0, r.stderr
    lines = {l.split()[0]: l for l in r.stdout.splitlines()}
    assert lines["workers"].split()[1] == "3" and lines["workers"].endswith("(app)")
    assert lines["socket_backlog"].split()[1] == "200" and lines["socket_backlog"].endswith("(cli)")
    assert lines["worker_death_policy"].endswith("(env)")
    assert lines["http_header_max"].endswith("(default)") if "http_header_max" in lines else True
    assert lines["deployment"].split()[1] == "dev"


def test_korectl_run_config_error_stops_startup(korectl, tmp_path):
    app = tmp_path / "app.py"
    app.write_text("import kore\nkore.config.worker_death_policy = 'explode'\n")
    r = korectl("run", str(app), env=NOPLUG, timeout=20)
    assert r.returncode == 2
    assert "worker_death_policy" in r.stderr and "'restart', 'terminate'" in r.stderr
    app.write_text("import kore\nkore.config.wrokers = 2\n")
    r = korectl("run", str(app), env=NOPLUG, timeout=20)
    assert r.returncode == 2 and "did you mean 'workers'" in r.stderr
    r = korectl("run", "--workers", "none", str(app), env=NOPLUG, timeout=20)
    assert r.returncode == 2 and "'workers'" in r.stderr


def test_korectl_config_options_lists_everything(korectl):
    r = korectl("config", "options", env=NOPLUG)
    assert r.returncode == 0
    for name in ("workers", "worker_death_policy", "graceful_timeout", "pidfile",
                 "python_path", "python_import"):
        assert ("\n" + name + " = ") in ("\n" + r.stdout)


def test_accumulating_list_option_adds_on_each_app_assignment():
    # Kore: kore.config.http_media_type = "..." adds a media type
    from kore.config import Option, Registry
    reg = Registry()
    reg.add(Option("media", "list", [], accumulate=True))
    reg.set("media", "text/x-a a")
    reg.set("media", "text/x-b b bb")
    assert reg.get("media") == ["text/x-a a", "text/x-b b bb"]
    reg.set("media", "text/x-c c", "env")      # env and cli still replace
    reg.set("media", "text/x-d d", "env")
    assert reg.get("media") == ["text/x-d d"]


def test_kores_process_options_without_a_process_stop_startup(reg):
    """keymgr_* and acme_runas name processes kore for Python does not have:
    setting one stops start-up with the reason, never silently ignored."""
    for name in ("keymgr_root", "keymgr_runas", "acme_runas"):
        r = Registry()
        for opt in kernel_options():
            r.add(opt)
        r.set(name, "nobody", "app")
        with pytest.raises(ConfigError) as e:
            r.check_unsupported()
        assert name in str(e.value) and "no " in str(e.value), e.value
    r = Registry()
    for opt in kernel_options():
        r.add(opt)
    r.set("seccomp_tracing", "yes", "app")
    r.check_unsupported()                 # works now: nothing to refuse
