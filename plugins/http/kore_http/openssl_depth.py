"""verify_depth for TLS client certificates, applied through ctypes.

Kore calls ``SSL_CTX_set_verify_depth(ctx, domain->x509_verify_depth)`` on
every domain that verifies clients and, when SNI switches a connection to
another domain, ``SSL_set_verify_depth(ssl, depth)`` on the connection.  The
``ssl`` module of Python 3.11 has no such setting (there is no
``SSLContext.verify_depth``, and no ``SSLSocket.get_verified_chain`` to
count the chain ourselves), so this module reaches the OpenSSL objects
behind ``ssl.SSLContext`` and ``_ssl._SSLSocket`` and calls those two
functions itself:

* The functions come from ``ctypes.CDLL(_ssl.__file__)``: the ``_ssl``
  extension is linked against libssl, so its handle resolves the libssl
  symbols of the very library whose objects we touch (loading some other
  ``libssl.so`` could give a second, different OpenSSL).
* CPython's ``_ssl.c`` starts both objects with a raw pointer right after
  ``PyObject_HEAD``::

      typedef struct { PyObject_HEAD; SSL_CTX *ctx; ... } PySSLContext;
      typedef struct { PyObject_HEAD; PyObject *Socket;  /* weakref */
                       SSL *ssl; PySSLContext *ctx; ... } PySSLSocket;

  so ``SSL_CTX*`` is at ``id(ctx) + object.__basicsize__`` and ``SSL*`` one
  pointer further in the ``_ssl._SSLSocket``, followed by the context object.

That layout is private, so nothing is written before it is checked:

* the types' ``__basicsize__`` is large enough to hold those fields (the
  reads stay inside the object);
* ``SSL_CTX*``: non-NULL, ``SSL_CTX_get_verify_mode`` equals the value for
  ``ctx.verify_mode`` (CERT_NONE 0, CERT_OPTIONAL 1 = SSL_VERIFY_PEER,
  CERT_REQUIRED 3 = PEER | FAIL_IF_NO_PEER_CERT), ``SSL_CTX_get_options``
  equals ``ctx.options`` (a distinctive 64-bit value) and
  ``SSL_CTX_get_verify_depth`` is a sane int (-1, OpenSSL's "unset", or
  0..1000); after setting, the depth reads back;
* ``SSL*``: the context field that follows it is ``id()`` of the socket's
  ``context`` object, ``SSL_get_SSL_CTX(ssl)`` is the (checked) ``SSL_CTX*``
  of that context, and the depth reads back after setting.

Anything that does not check out (another Python build, an OpenSSL linked
statically into ``_ssl`` without exported symbols, a missing function) means
no memory is touched: one warning per domain says that its verify_depth is
not enforced, and the server goes on.

OpenSSL's depth N allows the peer certificate (level 0), up to N
intermediate CAs and the trust anchor: levels 0..N+1.
"""

import ctypes

try:
    import _ssl
except ImportError:  # pragma: no cover - a Python without ssl
    _ssl = None

from kore.log import LOG, LOG_WARNING

_PTR = ctypes.sizeof(ctypes.c_void_p)
_HEAD = object.__basicsize__
# ssl.CERT_* -> SSL_CTX_get_verify_mode()
_MODES = {0: 0, 1: 0x01, 2: 0x01 | 0x02}
_MAX_SANE_DEPTH = 1000

_lib = None        # the ctypes handle once loaded and typed
_lib_error = None  # why it could not be loaded
_warned = set()    # domains already warned about (one warning each)


class Unsafe(Exception):
    """A check failed: do not touch the OpenSSL object."""


def _load():
    global _lib, _lib_error
    if _lib is not None or _lib_error is not None:
        return _lib
    try:
        if _ssl is None or not getattr(_ssl, "__file__", None):
            raise OSError("the _ssl module is built in (no shared object to load)")
        lib = ctypes.CDLL(_ssl.__file__)
        vp, c_int = ctypes.c_void_p, ctypes.c_int
        opts = ctypes.c_uint64 if _ssl.OPENSSL_VERSION_INFO >= (3,) else ctypes.c_ulong
        for name, restype, argtypes in (
                ("SSL_CTX_get_verify_mode", c_int, [vp]),
                ("SSL_CTX_get_verify_depth", c_int, [vp]),
                ("SSL_CTX_set_verify_depth", None, [vp, c_int]),
                ("SSL_CTX_get_options", opts, [vp]),
                ("SSL_get_SSL_CTX", vp, [vp]),
                ("SSL_get_verify_depth", c_int, [vp]),
                ("SSL_set_verify_depth", None, [vp, c_int])):
            fn = getattr(lib, name)  # AttributeError: symbol not exported
            fn.restype = restype
            fn.argtypes = argtypes
        _lib = lib
    except (OSError, AttributeError) as exc:
        _lib_error = "%s: %s" % (type(exc).__name__, exc)
    return _lib


def _read_ptr(obj, offset):
    return ctypes.c_void_p.from_address(id(obj) + offset).value or 0


def _ctx_ptr(lib, ctx):
    """The checked SSL_CTX* of an ssl.SSLContext (raises Unsafe)."""
    if not isinstance(ctx, _ssl._SSLContext):
        raise Unsafe("%r is not an SSLContext" % (ctx,))
    if _ssl._SSLContext.__basicsize__ < _HEAD + _PTR:
        raise Unsafe("unexpected _SSLContext layout")
    ptr = _read_ptr(ctx, _HEAD)
    if not ptr:
        raise Unsafe("no SSL_CTX pointer")
    want = _MODES.get(int(ctx.verify_mode))
    got = lib.SSL_CTX_get_verify_mode(ptr)
    if want is None or got != want:
        raise Unsafe("SSL_CTX verify mode %r does not match %r" % (got, ctx.verify_mode))
    if lib.SSL_CTX_get_options(ptr) != int(ctx.options):
        raise Unsafe("SSL_CTX options do not match")
    depth = lib.SSL_CTX_get_verify_depth(ptr)
    if not -1 <= depth <= _MAX_SANE_DEPTH:
        raise Unsafe("SSL_CTX verify depth %r is not sane" % depth)
    return ptr


def _ssl_ptr(lib, sslobj):
    """The checked SSL* of a connection (an _ssl._SSLSocket, or an
    SSLSocket/SSLObject wrapper holding one in ``_sslobj``)."""
    s = sslobj
    if not isinstance(s, _ssl._SSLSocket):
        s = getattr(sslobj, "_sslobj", None)
    if not isinstance(s, _ssl._SSLSocket):
        raise Unsafe("no _ssl._SSLSocket in %r" % (type(sslobj),))
    if _ssl._SSLSocket.__basicsize__ < _HEAD + 3 * _PTR:
        raise Unsafe("unexpected _SSLSocket layout")
    ctx = s.context
    if _read_ptr(s, _HEAD + 2 * _PTR) != id(ctx):
        raise Unsafe("_SSLSocket context field does not match")
    ptr = _read_ptr(s, _HEAD + _PTR)
    if not ptr:
        raise Unsafe("no SSL pointer")
    if lib.SSL_get_SSL_CTX(ptr) != _ctx_ptr(lib, ctx):
        raise Unsafe("SSL_get_SSL_CTX does not match the socket's context")
    return ptr


def _warn(domain, depth, why):
    if domain in _warned:
        return
    _warned.add(domain)
    LOG.write(LOG_WARNING, "domain '%s': verify_depth %d is not enforced "
              "(cannot reach OpenSSL safely: %s)" % (domain, depth, why))


def set_context_depth(ctx, depth, domain):
    """SSL_CTX_set_verify_depth(ctx, depth); False (and one warning naming
    ``domain``) when it cannot be done safely."""
    lib = _load()
    if lib is None:
        _warn(domain, depth, _lib_error)
        return False
    try:
        ptr = _ctx_ptr(lib, ctx)
        lib.SSL_CTX_set_verify_depth(ptr, depth)
        if lib.SSL_CTX_get_verify_depth(ptr) != depth:
            raise Unsafe("the depth did not read back")
    except Unsafe as exc:
        _warn(domain, depth, exc)
        return False
    return True


def set_connection_depth(sslobj, depth, domain):
    """SSL_set_verify_depth on one connection (an SNI switch keeps the depth
    of the context the handshake started with); False (and one warning
    naming ``domain``) when it cannot be done safely."""
    lib = _load()
    if lib is None:
        _warn(domain, depth, _lib_error)
        return False
    try:
        ptr = _ssl_ptr(lib, sslobj)
        if lib.SSL_get_verify_depth(ptr) != depth:
            lib.SSL_set_verify_depth(ptr, depth)
            if lib.SSL_get_verify_depth(ptr) != depth:
                raise Unsafe("the depth did not read back")
    except Unsafe as exc:
        _warn(domain, depth, exc)
        return False
    return True
