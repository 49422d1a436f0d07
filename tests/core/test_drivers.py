"""kore.drivers: one implementation of a plugin's kind, loaded by name from
the entry-point group kore.<plugin>.<kind>.  The drivers are real installed
distributions (a .dist-info directory on sys.path), found the way pip
installed ones are."""

import sys
import textwrap

import pytest

from kore import ConfigError, drivers

GROUP = "kore.testkit.backplane"


def _dist(site, name, version, entry_points, module=None, source=""):
    info = site / ("%s-%s.dist-info" % (name.replace("-", "_"), version))
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
                                   % (name, version))
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    if module:
        (site / (module + ".py")).write_text(textwrap.dedent(source))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("drivers-site")
    _dist(site, "kore-testkit", "1.0", """
        [kore.testkit.backplane]
        local = testkit_local:LocalBackplane
        """, "testkit_local", """
        class LocalBackplane:
            def __init__(self, url=None, **kw):
                self.url = url
                self.kw = kw

        class OtherBackplane(LocalBackplane):
            pass
        """)
    _dist(site, "kore-testkit-redis", "0.3", """
        [kore.testkit.backplane]
        redis = testkit_redis:RedisBackplane
        """, "testkit_redis", """
        import testkit_no_such_dependency
        class RedisBackplane:
            pass
        """)
    _dist(site, "kore-testkit-dup-a", "1.0", """
        [kore.testkit.backplane]
        twice = testkit_local:LocalBackplane
        """)
    _dist(site, "kore-testkit-dup-b", "2.0", """
        [kore.testkit.backplane]
        twice = testkit_local:OtherBackplane
        """)
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))
    for mod in ("testkit_local", "testkit_redis"):
        sys.modules.pop(mod, None)


def test_group_name_and_validation():
    assert drivers.group("websocket", "backplane") == "kore.websocket.backplane"
    for bad in ("", "a.b", " x"):
        with pytest.raises(ValueError, match="bad plugin name"):
            drivers.group(bad, "backplane")


def test_available_lists_names_without_importing(site):
    assert drivers.available("testkit", "backplane") == ["local", "redis", "twice"]
    assert "testkit_redis" not in sys.modules
    assert drivers.available("testkit", "nothing") == []


def test_load_returns_the_object_or_an_instance(site):
    cls = drivers.load("testkit", "backplane", "local")
    assert cls.__name__ == "LocalBackplane"
    obj = drivers.load("testkit", "backplane", " local ", invoke=True,
                       invoke_args=("redis://127.0.0.1/0",), invoke_kwds={"db": 1})
    assert isinstance(obj, cls)
    assert (obj.url, obj.kw) == ("redis://127.0.0.1/0", {"db": 1})


def test_unknown_driver_names_option_installed_and_package(site):
    with pytest.raises(drivers.DriverNotFound) as info:
        drivers.load("testkit", "backplane", "postgres", option="testkit_backplane",
                     packages={"postgres": "kore-plugin-testkit-pg"})
    msg = str(info.value)
    assert msg == ("no kore.testkit.backplane driver 'postgres' (option "
                   "'testkit_backplane'); installed: local, redis, twice; "
                   "pip install kore-plugin-testkit-pg")
    assert isinstance(info.value, ConfigError)
    assert info.value.installed == ["local", "redis", "twice"]


def test_unknown_driver_without_a_known_package_says_how_to_provide_one(site):
    with pytest.raises(drivers.DriverNotFound, match="declares it in the entry-point "
                       "group kore.testkit.backplane"):
        drivers.load("testkit", "backplane", "nats")
    with pytest.raises(drivers.DriverNotFound, match="installed: none"):
        drivers.load("testkit", "nothing", "x")
    with pytest.raises(drivers.DriverNotFound, match="driver ''"):
        drivers.load("testkit", "backplane", "")


def test_driver_that_fails_to_import_names_its_distribution(site):
    with pytest.raises(drivers.DriverLoadFailure) as info:
        drivers.load("testkit", "backplane", "redis")
    msg = str(info.value)
    assert "kore.testkit.backplane driver 'redis' (kore-testkit-redis 0.3" in msg
    assert "testkit_redis:RedisBackplane" in msg
    assert "ModuleNotFoundError" in msg and "testkit_no_such_dependency" in msg
    assert isinstance(info.value, ConfigError)


def test_driver_provided_twice_is_refused(site):
    with pytest.raises(drivers.DriverLoadFailure, match="several distributions "
                       r"\(kore-testkit-dup-a 1.0, kore-testkit-dup-b 2.0\)"):
        drivers.load("testkit", "backplane", "twice")
