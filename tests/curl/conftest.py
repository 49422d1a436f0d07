"""Fixtures of the curl plugin's tests: upstreams in this process's gevent
hub, certificates, and ``drive`` to run a coroutine in a greenlet."""

import os
import tempfile

import gevent
from gevent import ssl
import pytest

from kore import runtime
from kore.aio import drive as _drive

import kore_curl
from kore_curl import multi, plugin

from curl_certs import make_pki
from curl_upstream import Upstream



@pytest.fixture(autouse=True)
def _curl_options():
    """The plugin's options in this process's registry, for curl tests only."""
    registry = runtime.registry()
    added = "curl_timeout" not in registry.options
    if added:
        plugin.kore_config_options(registry)
    yield
    if added:
        for name in ("curl_timeout", "curl_recv_max"):
            registry.remove(name)


@pytest.fixture
def run():
    """run(coro, timeout=10) -> value: drive ``coro`` in a greenlet."""
    def _run(coro, timeout=10):
        g = gevent.spawn(_drive, coro)
        g.join(timeout)
        if not g.ready():
            g.kill()
            raise AssertionError("coroutine did not finish in %ss" % timeout)
        return g.get()
    return _run


@pytest.fixture(autouse=True)
def _fresh_multi():
    yield
    multi.shutdown()


@pytest.fixture
def setting():
    """setting(name, value): set a curl option for this test only."""
    touched = []

    def _set(name, value):
        touched.append(name)
        runtime.registry().set(name, value, "cli")
    yield _set
    for name in touched:
        runtime.registry().reset(name, "cli")


@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_context(pki, client_ca=None):
    # gevent's SSLContext: the handshake must not block this process's hub
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server_cert"], pki["server_key"])
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


@pytest.fixture
def tls_upstream(pki):
    up = Upstream(ssl_context=server_context(pki))
    yield up
    up.stop()


@pytest.fixture
def mtls_upstream(pki):
    up = Upstream(ssl_context=server_context(pki, client_ca=pki["ca"]))
    yield up
    up.stop()


@pytest.fixture
def h2_upstream(pki):
    up = Upstream(ssl_context=server_context(pki), h2=True)
    yield up
    up.stop()


@pytest.fixture
def unix_upstream():
    d = tempfile.mkdtemp(prefix="kcurl")
    path = os.path.join(d, "up.sock")
    up = Upstream(unix=path)
    yield up
    up.stop()
    try:
        os.unlink(path)
        os.rmdir(d)
    except OSError:
        pass


__all__ = ["kore_curl"]
