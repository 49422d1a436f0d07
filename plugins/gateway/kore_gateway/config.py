"""``kore.enable_gateway(...)``: what the application configures.

Everything is recorded in the master while the application is imported
(``GATEWAY``); workers inherit it through fork.  Bad arguments raise
``ConfigError`` naming the argument and what it accepts, so start-up stops
with one message.
"""

import os

from kore.config import ConfigError

from .policy import Policy, parse_rate

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                         "ES256", "ES384", "ES512", "EdDSA")
DEFAULT_REALM = "kore API gateway"


class Gateway:
    """The gateway's configuration (one per application load)."""

    def __init__(self):
        self.enabled = False          # kore.enable_gateway was called
        self.realm = DEFAULT_REALM
        self.secret = None            # HMAC key (bytes)
        self.public_key = None        # a loaded public key (RS/ES/PS/EdDSA)
        self.key_file = None
        self.jwks_url = None
        self.jwks_ttl = 300.0
        self.jwks_timeout = 5.0
        self.algorithms = ()
        self.leeway = 60.0
        self.issuer = None
        self.audience = None
        self.require = ()
        self.authorizer = None
        self.auth_timeout = 10.0
        self.rate_by = "subject"
        self.cache_size = 4096
        self.app_policy = Policy()

    @property
    def verifies_jwt(self):
        return bool(self.secret or self.public_key is not None or self.jwks_url)


GATEWAY = Gateway()


def reset():
    global GATEWAY
    GATEWAY = Gateway()
    return GATEWAY


def _str_list(value, name):
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, (list, tuple, set, frozenset)):
        out = []
        for v in value:
            if not isinstance(v, str) or not v:
                raise ConfigError("enable_gateway: %s must be a list of non-empty str, "
                                  "got %r" % (name, v))
            out.append(v)
        return tuple(out)
    raise ConfigError("enable_gateway: %s must be a str or a list of str" % name)


def _load_public_key(path):
    from cryptography.hazmat.primitives import serialization
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError("enable_gateway: key_file %r cannot be read: %s"
                          % (path, exc.strerror or exc)) from None
    try:
        if b"PRIVATE KEY" in data:
            raise ConfigError("enable_gateway: key_file %r holds a private key; give "
                              "the public key (or certificate) that verifies tokens" % path)
        if b"BEGIN CERTIFICATE" in data:
            from cryptography import x509
            return x509.load_pem_x509_certificate(data).public_key()
        if data.lstrip().startswith(b"-----"):
            return serialization.load_pem_public_key(data)
        return serialization.load_der_public_key(data)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError("enable_gateway: key_file %r is not a PEM/DER public key or "
                          "certificate: %s" % (path, exc)) from None


def _default_asymmetric(key):
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, ed448, rsa
    if isinstance(key, rsa.RSAPublicKey):
        return ("RS256",)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": ("ES256",), "secp384r1": ("ES384",),
                "secp521r1": ("ES512",)}.get(key.curve.name, ("ES256",))
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return ("EdDSA",)
    raise ConfigError("enable_gateway: key_file holds an unsupported key type %s"
                      % type(key).__name__)


def enable_gateway(enable_auth=True, secure_key=None, realm=DEFAULT_REALM, *,
                   algorithms=None, key_file=None, jwks_url=None, jwks_ttl=300,
                   leeway=60, issuer=None, audience=None, require=None,
                   authorizer=None, auth_timeout=10, roles=None, role=None,
                   source=None, rate_limit=None, rate_limit_by="subject",
                   token_cache=4096):
    """Skitai's ``enable_gateway(enable_auth, secure_key, realm)`` plus the
    JWT settings (see docs/gateway.md).  ``enable_auth`` is a plain bool."""
    # a second call replaces the first (an Authorizer installed with
    # kore.set_auth_handler before it stays)
    keep = GATEWAY.authorizer
    g = reset()
    g.authorizer = keep
    if not isinstance(enable_auth, bool):
        raise ConfigError("enable_gateway: enable_auth must be True or False, got %r"
                          % (enable_auth,))
    if not isinstance(realm, str) or not realm or '"' in realm or "\\" in realm:
        raise ConfigError("enable_gateway: realm must be a non-empty str without "
                          "quotes or backslashes, got %r" % (realm,))
    g.enabled = True
    g.realm = realm
    if secure_key is not None:
        if isinstance(secure_key, str):
            secure_key = secure_key.encode("utf-8")
        if not isinstance(secure_key, (bytes, bytearray)) or len(secure_key) < 16:
            raise ConfigError("enable_gateway: secure_key must be a str or bytes of at "
                              "least 16 bytes (RFC 7518 asks 32 for HS256)")
        g.secret = bytes(secure_key)
    sources = [n for n, v in (("secure_key", secure_key), ("key_file", key_file),
                              ("jwks_url", jwks_url)) if v is not None]
    if len(sources) > 1:
        raise ConfigError("enable_gateway: give one of secure_key, key_file and "
                          "jwks_url, not %s" % " and ".join(sources))
    if key_file is not None:
        g.key_file = os.fspath(key_file)
        g.public_key = _load_public_key(g.key_file)
    if jwks_url is not None:
        if not isinstance(jwks_url, str) or not jwks_url.startswith(("http://", "https://")):
            raise ConfigError("enable_gateway: jwks_url must be an http:// or https:// "
                              "URL, got %r" % (jwks_url,))
        g.jwks_url = jwks_url
    algs = _str_list(algorithms, "algorithms")
    if algs is None:
        if g.secret is not None:
            algs = ("HS256",)
        elif g.public_key is not None:
            algs = _default_asymmetric(g.public_key)
        elif g.jwks_url is not None:
            algs = ("RS256", "ES256")
        else:
            algs = ()
    for a in algs:
        if a not in HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS:
            raise ConfigError("enable_gateway: unknown algorithm %r (known: %s; 'none' "
                              "is never accepted)" % (a, ", ".join(HMAC_ALGORITHMS
                                                                   + ASYMMETRIC_ALGORITHMS)))
    hmac = [a for a in algs if a in HMAC_ALGORITHMS]
    if hmac and g.secret is None:
        raise ConfigError("enable_gateway: algorithms %s need secure_key (an HMAC "
                          "secret); key_file and jwks_url hold public keys" % ",".join(hmac))
    if g.secret is not None and len(hmac) != len(algs):
        raise ConfigError("enable_gateway: with secure_key only HS256/HS384/HS512 can "
                          "be allowed (RFC 8725: never mix HMAC and public-key "
                          "algorithms)")
    g.algorithms = tuple(algs)
    for name, value in (("jwks_ttl", jwks_ttl), ("leeway", leeway),
                        ("auth_timeout", auth_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError("enable_gateway: %s must be a number of seconds >= 0, "
                              "got %r" % (name, value))
    g.jwks_ttl = float(jwks_ttl)
    g.leeway = float(leeway)
    g.auth_timeout = float(auth_timeout) or 10.0
    if issuer is not None and not isinstance(issuer, str):
        raise ConfigError("enable_gateway: issuer must be a str")
    g.issuer = issuer
    aud = _str_list(audience, "audience")
    g.audience = list(aud) if aud else None
    g.require = _str_list(require, "require") or ()
    if authorizer is not None:
        set_authorizer(authorizer)
    if rate_limit_by not in ("subject", "address"):
        raise ConfigError("enable_gateway: rate_limit_by must be 'subject' or "
                          "'address', got %r" % (rate_limit_by,))
    g.rate_by = rate_limit_by
    if isinstance(token_cache, bool) or not isinstance(token_cache, int) or token_cache < 0:
        raise ConfigError("enable_gateway: token_cache must be an int >= 0 (0: no cache)")
    g.cache_size = token_cache
    g.app_policy = Policy.make("enable_gateway", auth=enable_auth, roles=roles, role=role,
                               source=source, rate_limit=parse_rate(rate_limit,
                                                                    "enable_gateway"))
    return None


def set_authorizer(obj):
    """Install Skitai's Authorizer: an object with ``handle_token(handler,
    request)`` and/or ``handle_claim(handler, request)``."""
    hs = [n for n in ("handle_token", "handle_claim") if callable(getattr(obj, n, None))]
    if not hs:
        raise ConfigError("gateway authorizer %r has neither handle_token(handler, "
                          "request) nor handle_claim(handler, request)" % (obj,))
    GATEWAY.authorizer = obj
    return None


def check_loaded():
    """At application load: the configuration can verify the tokens it asks."""
    g = GATEWAY
    if not g.enabled:
        from .policy import REGISTRY
        if REGISTRY.entries:
            raise ConfigError("%s: gateway policies need kore.enable_gateway(...) "
                              "first (they would be ignored)" % REGISTRY.entries[0].where)
        return
    if not g.verifies_jwt and not callable(getattr(g.authorizer, "handle_token", None)):
        from .policy import REGISTRY
        needs = g.app_policy.auth or any(p.auth for p in REGISTRY.all_policies())
        if needs:
            raise ConfigError("enable_gateway: tokens are required but nothing can check "
                              "them: pass secure_key=, key_file= or jwks_url= for JWTs, "
                              "or an authorizer with handle_token(handler, request)")
