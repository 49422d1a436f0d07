"""Start the HTTP/2 test app (a uniquely named module: several test folders
have a conftest.py of their own)."""

import os

from kore_testing import KoreServer, free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "apps", "h2_app.py")


def start_h2(tmp_path_factory, pki, args=(), env=None, name="h2"):
    """The test app on two ports: srv.port (cleartext) and srv.tls_port."""
    tmp = tmp_path_factory.mktemp(name)
    (tmp / "files").mkdir()
    (tmp / "files" / "a.txt").write_text("filedata\n")
    (tmp / "marks").mkdir()
    tls_port = free_port()
    port = free_port()
    e = {"PORT": str(port), "TLS_PORT": str(tls_port), "CERT": str(pki / "c.pem"),
         "KEY": str(pki / "k.pem"), "FILES": str(tmp / "files"), "MARKS": str(tmp / "marks"),
         "KORE_HTTP_ACCESS_LOG": str(tmp / "access.log")}
    e.update(env or {})
    srv = KoreServer(tmp, APP, (), workers=1, env=e, args=list(args), bind=False)
    srv.port = port
    srv.tls_port = tls_port
    srv.url = "http://127.0.0.1:%d" % port
    srv.tls_url = "https://127.0.0.1:%d" % tls_port
    srv.marks = tmp / "marks"
    srv.access_log = tmp / "access.log"
    if not (wait_port("127.0.0.1", port, 20, srv.proc)
            and wait_port("127.0.0.1", tls_port, 20, srv.proc)):
        out = srv.log()
        srv.kill()
        raise AssertionError("server did not start:\n" + out)
    srv.wait_ready(1)
    return srv
