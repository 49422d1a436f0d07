"""Servers declared on port 0: each gets a port of its own (the kernel's
choice, logged), and a reload keeps serving on the same ports."""

import signal

import httpx

from kore_testing import wait_for

APP = """
import kore

def kore_parent_configure(args):
    for name in ("one", "two"):
        kore.server(name, ip="127.0.0.1", port="0", tls=False)
        d = kore.domain("*", attach=name) if name == "one" else kore.domain("two.test", attach=name)
        d.route("/", (lambda n: lambda req: req.response(200, n.encode()))(name),
                methods=["get"])
"""


def test_two_servers_on_port_0_get_their_own_ports_kept_across_reload(kore_server):
    srv = kore_server(APP, bind=False)
    one, two = srv.listen_port("one"), srv.listen_port("two")
    assert one != two
    assert httpx.get("http://127.0.0.1:%d/" % one, timeout=10).text == "one"
    r = httpx.get("http://127.0.0.1:%d/" % two, headers={"host": "two.test"}, timeout=10)
    assert r.text == "two"
    srv.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload complete" in srv.log(), 60), srv.log()
    assert httpx.get("http://127.0.0.1:%d/" % one, timeout=10).text == "one"
    r = httpx.get("http://127.0.0.1:%d/" % two, headers={"host": "two.test"}, timeout=10)
    assert r.text == "two"
    assert srv.stop() == 0
