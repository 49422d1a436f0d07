"""kore-plugin-http2: the hooks that add HTTP/2 to the http plugin's servers.

* ``kore_tls_alpn`` (tryfirst): TLS servers offer ``h2,http/1.1``;
* ``kore_connection_protocol``: ALPN ``h2`` connections, and cleartext ones
  that open with the HTTP/2 connection preface from a trusted peer when
  ``http2_cleartext = prior-knowledge`` (h2c), are served by
  ``connection.serve``; everything else is left to HTTP/1.1 (``Upgrade:
  h2c`` is not honoured: the request is answered as HTTP/1.1).
"""

import time

from kore import hookimpl

from . import options as _options
from .options import SETTINGS2 as P

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@hookimpl
def kore_config_options(registry):
    for opt in _options.options():
        registry.add(opt)


@hookimpl
def kore_app_loaded(app):
    _options.check()
    P.load()
    if P.enabled:
        # imported in the master, before fork: a worker may have dropped the
        # privileges it would need to read the installation
        from . import connection  # noqa: F401


@hookimpl
def kore_worker_serve(worker):
    P.load()
    if P.enabled:
        from . import connection  # noqa: F401  (h2 imported before the first client)


@hookimpl
def kore_cleartext_protocols():
    # the http plugin reads a cleartext connection's first bytes up front
    # only when h2c prior knowledge is on
    P.load()
    return ["h2c"] if P.enabled and P.cleartext else None


@hookimpl(tryfirst=True)
def kore_tls_alpn(server):
    P.load()
    return ["h2"] if P.enabled else None


@hookimpl
def kore_connection_protocol(conn, alpn, preface):
    if not P.enabled:
        return None
    if alpn == "h2":
        from .connection import serve
        return serve
    if alpn is not None or preface is None or not P.cleartext or not conn.trusted:
        return None
    if len(preface) < len(PREFACE) and PREFACE.startswith(preface):
        # the preface came split over reads: wait for the rest of it
        preface = _read_preface(conn, preface)
        if preface is None:
            return _closed
        if not preface.startswith(PREFACE):
            return _as_http11(preface)
    if preface.startswith(PREFACE):
        from .connection import serve
        return lambda c, _p: serve(c, preface)
    return None


def _read_preface(conn, data):
    from gevent.socket import wait_read
    from kore_http.settings import SETTINGS as S
    deadline = time.monotonic() + S.header_timeout
    while len(data) < len(PREFACE) and PREFACE.startswith(data):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            wait_read(conn.fd, timeout=left)
            more = conn.sock.recv(65536)
        except OSError:
            return None
        if not more:
            return None
        data += more
    return data


def _closed(conn, preface):
    return None


def _as_http11(data):
    # bytes already read belong to an HTTP/1.1 request after all
    from kore_http.h1.server import serve as serve_h1
    return lambda c, _p: serve_h1(c, data)


@hookimpl
def kore_http_request_attributes():
    from .hints import hint_promise
    return {"hint_promise": hint_promise}
