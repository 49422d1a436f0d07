"""TLS: one ssl.SSLContext per domain, chosen by SNI; client certificates."""

import os
import ssl

from kore import _state
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


def _context_for(domain):
    _check_verify_depth(domain)
    reg = _state.registry
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
    if dh and os.path.exists(dh):
        try:
            ctx.load_dh_params(dh)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError("tls_dhparam %r: %s" % (dh, exc)) from None
    if domain.acme and not (domain.cert and domain.key):
        raise ConfigError("domain '%s': acme=True needs kore-plugin-acme (not "
                          "installed); give cert= and key=" % domain.host)
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
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def build_contexts(server):
    """Give the server an SSLContext whose SNI callback picks the domain's."""
    if not server.domains:
        raise ConfigError("TLS server '%s' has no domain (a domain holds the "
                          "certificate)" % server.name)
    for d in server.domains:
        d.ssl_context = _context_for(d)
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

    def sni(sslobj, name, ctx):
        if name:
            h = name.lower()
            for d in domains:
                if d.matches(h):
                    if d.ssl_context is not ctx:
                        sslobj.context = d.ssl_context
                        if id(d) in own_depth:
                            openssl_depth.set_connection_depth(
                                sslobj, d.verify_depth, d.host)
                    return None
        return None

    default.sni_callback = sni
    server.ssl_context = default
