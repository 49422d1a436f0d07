"""TLS: one ssl.SSLContext per domain, chosen by SNI; client certificates.

The ALPN ids a server offers come from the ``kore_tls_alpn`` hook (this
plugin offers ``http/1.1``); the ``kore_tls_context`` hook may pick another
context for one handshake (ACME certificates); a domain without certificate
files (``acme=True``) is handed to ``kore_tls_domain_context``.
"""

import os
import ssl

from kore import runtime
from kore.config import ConfigError

from . import openssl_depth

_INT_MAX = 2 ** 31 - 1


def _check_verify_depth(domain):
    """verify_depth must be an int in 0..INT_MAX (Kore's default is 1)."""
    v = domain.verify_depth
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _INT_MAX:
        raise ConfigError("domain '%s': verify_depth %r is invalid: expected an "
                          "int from 0 to %d (intermediate CAs allowed between the "
                          "client certificate and the client_verify CA; default 1)"
                          % (domain.host, v, _INT_MAX))


def wants_client_hello():
    """True when a plugin needs ClientHellos' ALPN offers
    (``kore_tls_client_hello``): the connection layer then peeks at each."""
    return any(runtime.notify("kore_tls_client_hello", where="kore_tls_client_hello hook"))


def alpn_ids(server):
    """The ALPN ids plugins offer on ``server``, in hook order, once each."""
    ids = []
    for answer in runtime.hook("kore_tls_alpn")(server=server):
        for i in answer or ():
            if i not in ids:
                ids.append(i)
    return ids


def _context_for(domain, alpn):
    _check_verify_depth(domain)
    reg = runtime.registry()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    version = reg.get("tls_version")
    if version == "1.2":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    cipher = reg.get("tls_cipher")
    if cipher:
        try:
            ctx.set_ciphers(cipher)
        except ssl.SSLError as exc:
            raise ConfigError("tls_cipher %r: %s" % (cipher, exc)) from None
    dh = reg.get("tls_dhparam")
    if dh:
        if not os.path.exists(dh):
            raise ConfigError("tls_dhparam %r does not exist: create it (openssl "
                              "dhparam -out %s 2048) or remove the setting" % (dh, dh))
        try:
            ctx.load_dh_params(dh)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError("tls_dhparam %r: %s" % (dh, exc)) from None
    if domain.acme and not (domain.cert and domain.key):
        handled = runtime.hook("kore_tls_domain_context")(domain=domain, context=ctx)
        if not any(handled):
            raise ConfigError("domain '%s': acme=True needs kore-plugin-acme (not "
                              "installed: pip install kore-plugin-acme); or give "
                              "cert= and key=" % domain.host)
    else:
        try:
            ctx.load_cert_chain(domain.cert, domain.key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("domain '%s': cannot load cert %r / key %r: %s"
                              % (domain.host, domain.cert, domain.key, exc)) from None
    if domain.client_verify:
        try:
            ctx.load_verify_locations(cafile=domain.client_verify)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("domain '%s': client_verify %r: %s"
                              % (domain.host, domain.client_verify, exc)) from None
        ctx.verify_mode = ssl.CERT_REQUIRED
        # Kore: SSL_CTX_set_verify_depth(ctx, x509_verify_depth).  No ssl
        # module setting exists; on failure it logs a warning and goes on.
        openssl_depth.set_context_depth(ctx, domain.verify_depth, domain.host)
        if domain.crl:
            try:
                ctx.load_verify_locations(cafile=domain.crl)
                ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError("domain '%s': crl %r: %s" % (domain.host, domain.crl, exc)) from None
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def build_contexts(server):
    """Give the server an SSLContext whose SNI callback picks the domain's."""
    if not server.domains:
        raise ConfigError("TLS server '%s' has no domain (a domain holds the "
                          "certificate)" % server.name)
    alpn = alpn_ids(server)
    for d in server.domains:
        d.ssl_context = _context_for(d, alpn)
    default = server.domains[0].ssl_context
    domains = list(server.domains)
    verifying = [d for d in domains if d.client_verify]
    if verifying and len(verifying) != len(domains):
        # OpenSSL keeps the verify mode of the context the handshake started
        # with when SNI switches contexts: ask every client for an optional
        # certificate (each domain's own CA verifies it) and let the HTTP
        # layer refuse requests to verifying domains without one.
        for d in domains:
            d.ssl_context.verify_mode = ssl.CERT_OPTIONAL
    # SSL_set_SSL_CTX (the context switch below) keeps the verify depth the
    # connection got from the context the handshake started with (the first
    # domain's; OpenSSL's default, 100, when it does not verify).  As
    # Kore does, give the connection the chosen domain's depth when it differs.
    start = domains[0].verify_depth if domains[0].client_verify else None
    own_depth = {id(d) for d in verifying if d.verify_depth != start}

    chooser = runtime.hook("kore_tls_context")
    choose = wants_client_hello()

    def sni(sslobj, name, ctx):
        h = name.lower() if name else None
        found = None
        if h:
            for d in domains:
                if d.matches(h):
                    found = d
                    break
        if choose:
            other = chooser(domain=found, server_name=h, sslobj=sslobj,
                            offered_alpn=getattr(sslobj, "kore_offered_alpn", None))
            if other is not None:
                if other is not ctx:
                    sslobj.context = other
                return None
        if found is not None and found.ssl_context is not ctx:
            sslobj.context = found.ssl_context
            if id(found) in own_depth:
                openssl_depth.set_connection_depth(sslobj, found.verify_depth, found.host)
        return None

    default.sni_callback = sni
    server.ssl_context = default


def seed_from_rand_file():
    """Kore's ``rand_file``: mix the file's bytes into OpenSSL's random pool
    at start-up (master, before the fork); ``save_rand_file`` writes fresh
    bytes back at stop, so the next start has a new seed."""
    path = runtime.option("rand_file")
    if not path:
        return
    try:
        with open(path, "rb") as f:
            data = f.read(1024)
    except FileNotFoundError:
        return              # written at stop
    except OSError as exc:
        raise ConfigError("rand_file %r cannot be read: %s" % (path, exc)) from None
    if data:
        ssl.RAND_add(data, len(data) / 2)


def save_rand_file():
    path = runtime.option("rand_file")
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(ssl.RAND_bytes(1024))
    except OSError:
        pass
