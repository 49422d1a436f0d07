"""kore-plugin-acme: the hooks that give ``acme=True`` domains certificates.

Master: ``kore_tls_domain_context`` loads the stored certificate (or a
self-signed placeholder) into each acme domain's context at application
load; ``kore_master_start`` starts the ordering/renewal greenlets
(``manager``).  Workers: ``kore_tls_context`` hands the tls-alpn-01
certificate to validation handshakes, ``kore_connection_protocol`` closes
``acme-tls/1`` connections after the handshake, the http-01 route answers
tokens, ``kore_worker_message`` takes challenges and new certificates.
"""

from kore import hookimpl, ipc, runtime
from kore.config import ConfigError
from kore.log import notice, warning

# Light imports only: this module is imported whenever korectl starts (the
# acme library, requests and cryptography load when an acme domain exists).
from . import memload, settings, workerside

HTTP01_ROUTE = r"^/.well-known/acme-challenge/([A-Za-z0-9_-]+)$"

_manager = None
_settings = None


def _get_settings():
    global _settings
    if _settings is None:
        _settings = settings.Settings()
    return _settings


@hookimpl
def kore_config_options(registry):
    for opt in settings.options():
        registry.add(opt)


@hookimpl
def kore_namespace():
    return {"acme_renew": acme_renew}


def acme_renew(host=None):
    """kore.acme_renew([host]): order a new certificate now (every acme
    domain, or ``host``), in the master whichever process calls it."""
    if host is not None and not isinstance(host, str):
        raise TypeError("acme_renew(host): host must be a str")
    if not settings.DOMAINS:
        raise RuntimeError("acme_renew: the application has no acme=True domain")
    if host is not None and host.lower() not in settings.DOMAINS:
        raise ValueError("acme_renew: no acme=True domain '%s'" % host)
    if runtime.role() == "worker":
        runtime.worker().send(ipc.Message("acme.renew", (host or "").encode("utf-8")))
        return None
    if _manager is None:
        raise RuntimeError("acme_renew: the server is not running")
    _manager.renew(host)
    return None


@hookimpl
def kore_app_reset():
    global _settings
    settings.reset()
    _settings = None


@hookimpl
def kore_tls_domain_context(domain, context):
    if not domain.acme:
        return None
    from . import certs
    from .manager import current
    from .store import Store
    s = _get_settings()
    host = settings.register(domain, context)
    have = None
    try:
        have = current(Store(s.root), host)
    except PermissionError as exc:
        raise ConfigError("option 'acme_root': cannot read %s: %s" % (s.root, exc)) from None
    if have is not None:
        ci, chain, key = have
        memload.load(context, chain, key)
        notice("acme: %s: serving the stored certificate (serial %x, valid until %s)"
               % (host, ci.serial, ci.not_after.strftime("%Y-%m-%d %H:%M UTC")))
    else:
        chain, key = certs.placeholder(host)
        memload.load(context, chain, key)
        notice("acme: %s has no certificate yet: serving a self-signed placeholder "
               "until the ACME order (%s, %s) completes" % (host, s.challenge, s.provider))
    return True


@hookimpl(trylast=True)
def kore_tls_alpn(server):
    if any(d.acme for d in server.domains) and _get_settings().challenge == "tls-alpn-01":
        return [workerside.ACME_TLS]
    return None


@hookimpl
def kore_tls_client_hello():
    # only a tls-alpn-01 validation handshake needs the ALPN offer
    if settings.DOMAINS and _get_settings().challenge == "tls-alpn-01":
        return True
    return None


@hookimpl
def kore_tls_context(domain, server_name, sslobj, offered_alpn):
    return workerside.tls_context(server_name, offered_alpn)


def _close_after_handshake(conn, preface):
    """RFC 8737: an acme-tls/1 connection carries no application data."""
    return None


@hookimpl
def kore_connection_protocol(conn, alpn, preface):
    if alpn == workerside.ACME_TLS:
        return _close_after_handshake
    return None


@hookimpl
def kore_http_routes(routes):
    if not settings.DOMAINS or _get_settings().challenge != "http-01":
        return
    before = len(routes.added)
    routes.route(HTTP01_ROUTE, workerside.http01, methods=["get"],
                 owner="kore-plugin-acme")
    plain = [d for d, _ in routes.added[before:] if not d.server.tls]
    if not plain:
        raise ConfigError("acme_challenge http-01: the CA fetches "
                          "http://<name>/.well-known/acme-challenge/ on port 80, but "
                          "the app declares no plain server: add "
                          "kore.server(\"plain\", ip=..., port=\"80\", tls=False) with "
                          "a domain, or use acme_challenge tls-alpn-01")


@hookimpl(trylast=True)
def kore_app_loaded(app):
    # trylast: after the http plugin's, which builds the TLS contexts (and
    # so fills settings.DOMAINS through kore_tls_domain_context)
    if settings.DOMAINS:
        _get_settings()
    if _manager is not None and runtime.arbiter() is not None:
        # a SIGHUP reload in the master: new options, new set of domains
        _manager.reconfigure(_get_settings())


@hookimpl
def kore_master_start(arbiter):
    global _manager
    if not settings.DOMAINS:
        return
    from .manager import Manager
    _manager = Manager(arbiter, _get_settings())
    try:
        _manager.start()
    except OSError as exc:
        raise ConfigError("option 'acme_root': cannot create %s: %s"
                          % (_manager.store.root, exc)) from None


@hookimpl
def kore_master_message(arbiter, msg):
    if _manager is None or not msg.kind.startswith("acme."):
        return None
    return _manager.on_message(msg)


@hookimpl
def kore_worker_init(worker):
    workerside.hello(worker)


@hookimpl
def kore_worker_message(worker, msg):
    return workerside.on_message(worker, msg)


@hookimpl
def kore_master_stop(arbiter):
    global _manager
    if _manager is not None and _manager.lock.locked():
        warning("acme: stopping during an order; it starts again at the next start")
    _manager = None
