"""Automatic certificates: kore.domain(name, acme=True).

    korectl run examples/acme/app.py example.com [IP TLS_PORT HTTP_PORT]

serves https://example.com/ with a certificate from Let's Encrypt (the
default acme_provider), ordered and renewed by the master without a restart.
Until it is issued a self-signed placeholder is served.  The plain server
answers http-01 challenges when acme_challenge is "http-01" (the default,
tls-alpn-01, is answered on the TLS port itself).

Everything can be overridden from the environment, e.g. against a private
CA:  KORE_ACME_PROVIDER=https://127.0.0.1:14000/dir KORE_ACME_CA_BUNDLE=ca.pem
"""

import kore


class Site:
    def configure(self, args):
        name = args[1] if len(args) > 1 else "localhost"
        ip = args[2] if len(args) > 2 else "0.0.0.0"
        tls_port = args[3] if len(args) > 3 else "443"
        http_port = args[4] if len(args) > 4 else "80"

        kore.config.acme_email = "webmaster@" + name
        # kore.config.acme_provider = "https://acme-staging-v02.api.letsencrypt.org/directory"
        # kore.config.acme_challenge = "http-01"
        # kore.config.acme_root = "/var/lib/myapp/acme"

        kore.server("tls", ip=ip, port=tls_port, tls=True)
        site = kore.domain(name, attach="tls", acme=True)
        site.route("/", self.index, methods=["get"])

        kore.server("plain", ip=ip, port=http_port, tls=False)
        plain = kore.domain(name, attach="plain")
        plain.route("/", self.plain, methods=["get"])
        self.name = name

    def index(self, req):
        req.response_header("content-type", "text/plain")
        req.response(200, b"hello over TLS, with a certificate from ACME\n")

    def plain(self, req):
        req.response_header("location", "https://%s/" % self.name)
        req.response(301, b"")


koreapp = Site()
