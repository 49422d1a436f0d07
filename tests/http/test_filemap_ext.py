"""``filemap_ext``: the extension a filemap tries when the path does not
exist (Kore's, e.g. ``.html`` for extension-less URLs)."""

import httpx

APP = """
import os
import kore

kore.config.filemap_ext = ".html"
kore.server("default", ip="127.0.0.1", port="1", tls=False)
d = kore.domain("*")
d.filemaps({"/site": os.environ["ROOT"]})
"""


def test_filemap_ext_is_tried_for_a_missing_path(kore_server, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "about.html").write_text("<p>about</p>")
    (root / "plain").write_text("plain file")
    srv = kore_server(APP, env={"ROOT": str(root)})
    r = httpx.get(srv.url + "/site/about", timeout=10)
    assert r.status_code == 200 and r.text == "<p>about</p>"
    # an existing path is served as it is, and a path with neither is a 404
    assert httpx.get(srv.url + "/site/plain", timeout=10).text == "plain file"
    assert httpx.get(srv.url + "/site/nothing", timeout=10).status_code == 404
    assert httpx.get(srv.url + "/site/about.html", timeout=10).status_code == 200
