"""Start the HTTP/2 test app (a uniquely named module: several test folders
have a conftest.py of their own)."""

import os

from kore_testing import KoreServer

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "apps", "h2_app.py")


def start_h2(tmp_path_factory, pki, args=(), env=None, name="h2"):
    """The test app on two ports: srv.port (cleartext) and srv.tls_port."""
    tmp = tmp_path_factory.mktemp(name)
    (tmp / "files").mkdir()
    (tmp / "files" / "a.txt").write_text("filedata\n")
    (tmp / "marks").mkdir()
    # port 0: the ports the kernel chose are read from the log
    e = {"PORT": "0", "TLS_PORT": "0", "CERT": str(pki / "c.pem"),
         "KEY": str(pki / "k.pem"), "FILES": str(tmp / "files"), "MARKS": str(tmp / "marks"),
         "KORE_HTTP_ACCESS_LOG": str(tmp / "access.log")}
    e.update(env or {})
    srv = KoreServer(tmp, APP, (), workers=1, env=e, args=list(args), bind=False)
    try:
        srv.port = port = srv.listen_port("clear")
        srv.tls_port = tls_port = srv.listen_port("tls")
        srv.wait_ready(1)
    except AssertionError:
        srv.kill()
        raise
    srv.url = "http://127.0.0.1:%d" % port
    srv.tls_url = "https://127.0.0.1:%d" % tls_port
    srv.marks = tmp / "marks"
    srv.access_log = tmp / "access.log"
    return srv
