"""``korectl routes APP`` (the http plugin's kore_cli_commands)."""

from kore_http import cli, declare

APP = """
import kore

def hello(req):
    req.response(200, b"hi")

def wsgi_app(environ, start_response):
    start_response("200 OK", [])
    return [b"x"]

class App:
    def configure(self, args):
        kore.server("default", ip="127.0.0.1", port="8123", tls=False)
        d = kore.domain("example.test", attach="default")
        d.route("/", self.index, methods=["get", "post"])
        d.route("^/item/[0-9]+$", hello, methods=["get"])
        d.redirect("^/old/(.*)$", 301, "/new/$1")
        d.filemaps({"/static": "."})
        kore.mount("/legacy", wsgi_app, domain="example.test")

    def index(self, req):
        req.response(200, b"ok")

koreapp = App()
"""


def test_routes_lists_domains_routes_mounts_and_handlers(korectl, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    r = korectl("routes", str(tmp_path / "app.py"), env={"KORE_PLUGINS": "http"},
                cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "server default (plain) 127.0.0.1:8123" in out
    assert "  domain example.test" in out
    assert "GET,HEAD,POST  /" in out and "app.App.index" in out
    assert "~^/item/[0-9]+$" in out and "hello" in out
    assert "redirect ^/old/(.*)$ 301 -> /new/$1" in out
    assert "filemap /static -> ." in out
    assert "    mount /legacy -> app.wsgi_app" in out


def test_routes_reports_a_bad_app(korectl, tmp_path):
    (tmp_path / "app.py").write_text("raise RuntimeError('boom at import')\n")
    r = korectl("routes", str(tmp_path / "app.py"), env={"KORE_PLUGINS": "http"})
    assert r.returncode == 4 and "boom at import" in r.stderr


def test_no_route_warning_unit():
    st = declare.State()
    assert cli.no_route_warning(st) is None          # no server: nothing to say
    srv = declare.Server("default", [("tcp", "127.0.0.1", 1)], tls=False)
    st.servers["default"] = srv
    d = declare.Domain("*", srv)
    st.domains.append(d)
    srv.domains.append(d)
    assert "declares no route" in cli.no_route_warning(st)
    assert "(nothing: every request gets 404)" in "\n".join(cli.lines(st))
    d.redirects.append((__import__("re").compile("^/a$"), 301, "/b"))
    assert cli.no_route_warning(st) is None
