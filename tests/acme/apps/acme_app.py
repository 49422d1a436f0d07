"""An app with one acme=True domain, configured from the environment."""

import os
import urllib.parse

import kore

E = os.environ


class App:
    def configure(self, args):
        kore.config.workers = int(E.get("T_WORKERS", "2"))
        kore.config.acme_provider = E["T_PROVIDER"]
        if E.get("T_CA"):
            kore.config.acme_ca_bundle = E["T_CA"]
        kore.config.acme_email = "ops@localhost.test"
        kore.config.acme_challenge = E.get("T_CHALLENGE", "tls-alpn-01")
        kore.config.acme_retry_min = int(E.get("T_RETRY_MIN", "1"))
        kore.config.acme_retry_max = int(E.get("T_RETRY_MAX", "8"))
        if E.get("T_RENEW_BEFORE"):
            kore.config.acme_renew_before = E["T_RENEW_BEFORE"]
        if E.get("T_RUNAS"):
            kore.config.runas = E["T_RUNAS"]
        kore.server("tls", ip="127.0.0.1", port=E["T_TLS_PORT"], tls=True)
        d = kore.domain("localhost", attach="tls", acme=True)
        d.route("/", self.index, methods=["get"])
        d.route("/open", self.open_file, methods=["get"])
        if E.get("T_PLAIN_PORT"):
            kore.server("plain", ip="127.0.0.1", port=E["T_PLAIN_PORT"], tls=False)
            p = kore.domain("localhost", attach="plain")
            p.route("/", self.index, methods=["get"])
            p.route("/renew", self.renew, methods=["get"])

    def index(self, req):
        req.response(200, b"hello from %d\n" % os.getpid())

    def renew(self, req):
        kore.acme_renew("localhost")
        req.response(200, b"renewing")

    def open_file(self, req):
        path = urllib.parse.parse_qs(req.query)["path"][0]
        try:
            with open(path, "rb"):
                pass
            req.response(200, b"opened")
        except PermissionError:
            req.response(200, b"denied")
        except OSError as exc:
            req.response(200, ("error %s" % exc).encode())


koreapp = App()
