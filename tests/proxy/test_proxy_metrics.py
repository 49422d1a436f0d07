"""kore-plugin-proxy's metrics (the kore_metrics_collect hook), in process:
each alias's upstream servers, healthy or taken out (active checks, passive
failures), requests in flight and sent."""

import shutil
import subprocess

import pytest

from kore_proxy import alias as _alias
from kore_proxy import plugin
from kore_proxy.members import PROTO_HTTP


@pytest.fixture
def aliases():
    _alias.reset()
    yield _alias
    _alias.reset()


def _collect():
    from kore_metrics.store import Samples
    s = Samples()
    plugin.kore_metrics_collect(samples=s)
    return s


def _v(s, name, alias, upstream):
    return s.values[(name, (("alias", alias), ("upstream", upstream)))]


def test_upstream_health_and_requests(aliases):
    assert not _collect().values        # no alias: no families
    aliases.alias("@api", PROTO_HTTP, ["127.0.0.1:9001", "127.0.0.1:9002"],
                  max_fails=1, fail_timeout=30)
    aliases.alias("@one", PROTO_HTTP, ["127.0.0.1:9003"])
    a, b = aliases.ALIASES["api"].nodes
    one = aliases.ALIASES["one"].nodes[0]
    s = _collect()
    for up in ("127.0.0.1:9001", "127.0.0.1:9002"):
        assert _v(s, "kore_proxy_upstream_healthy", "@api", up) == 1
    a.requests, a.conns = 7, 2
    bal = aliases.ALIASES["api"].balancer
    bal.check_result(b, False, 1, 1, "status 500")          # active check: out
    aliases.ALIASES["one"].balancer.failed(one, 0.0, "refused")
    s = _collect()
    assert _v(s, "kore_proxy_upstream_healthy", "@api", "127.0.0.1:9001") == 1
    assert _v(s, "kore_proxy_upstream_healthy", "@api", "127.0.0.1:9002") == 0
    # a single server is never taken out by failures (nginx): still healthy
    assert _v(s, "kore_proxy_upstream_healthy", "@one", "127.0.0.1:9003") == 1
    assert _v(s, "kore_proxy_upstream_requests_total", "@api", "127.0.0.1:9001") == 7
    assert _v(s, "kore_proxy_upstream_active_requests", "@api", "127.0.0.1:9001") == 2
    bal.check_result(b, True, 1, 1)                          # back
    import time
    bal.failed(a, time.monotonic(), "refused")              # passive: out
    s = _collect()
    assert _v(s, "kore_proxy_upstream_healthy", "@api", "127.0.0.1:9001") == 0
    assert _v(s, "kore_proxy_upstream_healthy", "@api", "127.0.0.1:9002") == 1

    from kore_metrics.exposition import render
    exe = shutil.which("promtool")
    assert exe, "promtool missing (Debian package prometheus)"
    p = subprocess.run([exe, "check", "metrics"], input=render(s.families, s.values),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
