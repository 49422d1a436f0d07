"""Mistakes in kore.alias / kore.mount stop start-up with one message."""

import pytest

from kore_testing import KoreServer


@pytest.mark.parametrize("app,message", [
    ('kore.mount("/api", "@nope")',
     "kore.mount('/api', '@nope'): no alias '@nope'"),
    ('kore.alias("@a", kore.PROTO_HTTP, ["127.0.0.1:x"])',
     "kore.alias('@a'): member '127.0.0.1:x': bad port"),
    ('kore.alias("@a", kore.PROTO_HTTP, ["127.0.0.1:80"], retries=3)',
     "kore.alias('@a'): unknown option 'retries'"),
    ('kore.alias("@a", "gopher", ["127.0.0.1:80"])',
     "kore.alias('@a'): unknown type 'gopher'"),
    ('kore.alias("@a", kore.PROTO_HTTP, ["127.0.0.1:80"], policy="random")',
     "policy must be one of round_robin, least_conn"),
    ('kore.enable_cachefs(100, 1000)', "diskmax=1000 needs path="),
])
def test_start_up_stops_with_a_message(tmp_path, app, message):
    srv = KoreServer(tmp_path, "import kore\n" + app + "\n", wait=False)
    try:
        assert srv.proc.wait(30) != 0
        assert message in srv.log(), srv.log()
    finally:
        srv.cleanup()
