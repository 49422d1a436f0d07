"""Bearer tokens: reading them, and verifying JWTs with PyJWT.

The algorithms come from the configuration only (RFC 8725): a token's
``alg`` header picks nothing, so ``alg: none`` and an RS256 token re-signed
as HS256 with the public key fail like a bad signature.  ``exp`` and
``nbf`` are checked with a leeway, ``iss`` and ``aud`` when configured.

A verified token's claims are kept in a small per-worker cache keyed by the
whole token string (``token_cache`` entries, 0 turns it off): a hit still
checks ``exp``/``nbf`` against the clock, so the cache never stretches a
token's life; entries are dropped after ``jwks_ttl`` so a key removed from
a JWKS stops being honoured.
"""

import math
import time

import jwt

from .errors import InvalidToken  # noqa: F401  (re-exported)
from .jwks import JwksCache


def bearer_token(req):
    """The token of ``Authorization: Bearer <token>`` or None (RFC 6750 2.1)."""
    value = req.request_header("authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def looks_like_jwt(token):
    """A JWS compact serialization: three base64url segments."""
    return token.count(".") == 2


def _put(cache, key, value, size):
    """``cache[key] = value``, first dropping the oldest half when ``cache``
    holds ``size`` entries (insertion order is age order)."""
    if len(cache) >= size:
        for k in list(cache)[:max(1, size // 2)]:
            del cache[k]
    cache[key] = value


class Verifier:
    """Verifies JWTs for one gateway configuration."""

    HEAD_BYTES = 2048

    def __init__(self, g):
        self.g = g
        self.algorithms = list(g.algorithms)
        self.jwks = JwksCache(g.jwks_url, g.jwks_ttl, g.jwks_timeout) if g.jwks_url else None
        self.key = g.secret if g.secret is not None else g.public_key
        opts = {"require": list(g.require)}
        if g.audience is None:
            opts["verify_aud"] = False
        self.options = opts
        self.cache = {}
        self.states = {}          # token -> (GatewayState, since, until): known()
        self.heads = {}           # raw field block -> token (note_head)
        self.cache_size = g.cache_size
        self.cache_ttl = max(1.0, min(g.jwks_ttl or 300.0, 300.0))
        self.decodes = 0          # full verifications (the microbenchmark reads it)

    def verify(self, token):
        """The claims (dict) of a valid token; InvalidToken otherwise."""
        return self.verify_identity(token)[0]

    def verify_identity(self, token):
        """(claims, username, roles) of a valid token (``claim_identity``
        computed once per cached token); InvalidToken otherwise."""
        hit = self.cache.get(token)
        if hit is not None:
            now = time.time()
            claims, expires, not_before, stored, user, roles = hit
            if now - stored <= self.cache_ttl:
                leeway = self.g.leeway
                if expires is not None and now > expires + leeway:
                    self.cache.pop(token, None)
                    raise InvalidToken("The access token expired")
                if not_before is not None and now < not_before - leeway:
                    raise InvalidToken("The access token is not valid yet")
                return claims, user, roles
            self.cache.pop(token, None)
        claims = self._decode(token)
        user, roles = claim_identity(claims)
        if self.cache_size:
            exp = claims.get("exp")
            nbf = claims.get("nbf")
            _put(self.cache, token, (claims, exp if isinstance(exp, (int, float)) else None,
                                     nbf if isinstance(nbf, (int, float)) else None,
                                     time.time(), user, roles), self.cache_size)
        return claims, user, roles

    def known(self, token):
        """The request state (``GatewayState``) remembered for a token that
        was verified and admitted before, while it is still valid and
        cached; None otherwise (the full path then decides)."""
        hit = self.states.get(token)
        if hit is None:
            return None
        now = time.time()
        if hit[1] <= now <= hit[2]:
            return hit[0]
        self.states.pop(token, None)
        return None

    def remember(self, token, st):
        """Keep ``st`` (username and roles from the claims alone, no
        Authorizer) for ``known``; a request never changes it.  Kept with
        the span of time it may be used in: from ``nbf`` to ``exp`` (each
        widened by the leeway) and no longer than the cache's time to live."""
        if not self.cache_size:
            return
        hit = self.cache.get(token)
        if hit is None:
            return
        _claims, expires, not_before, stored, _user, _roles = hit
        leeway = self.g.leeway
        until = stored + self.cache_ttl
        if expires is not None:
            until = min(until, expires + leeway)
        since = -math.inf if not_before is None else not_before - leeway
        _put(self.states, token, (st, since, until), self.cache_size)

    def note_head(self, fields, token):
        """Remember that the raw HTTP/1.1 field block ``fields`` carries
        ``token`` (``heads``): a client repeating its request head (every
        keep-alive client of an API does) is then recognised by one look-up
        of bytes it already sent, without finding and slicing its
        Authorization header again.  The token itself is still checked by
        ``known`` on every request; blocks over ``HEAD_BYTES`` are not kept,
        so the map holds at most ``cache_size`` x ``HEAD_BYTES`` bytes."""
        if len(fields) <= self.HEAD_BYTES:
            _put(self.heads, fields, token, self.cache_size)

    def _decode(self, token):
        self.decodes += 1
        g = self.g
        key = self.key
        algorithms = self.algorithms
        try:
            if self.jwks is not None:
                key, alg = self.jwks.key_for(token, algorithms)
                algorithms = [alg]
            return jwt.decode(token, key, algorithms=algorithms, leeway=g.leeway,
                              issuer=g.issuer, audience=g.audience, options=self.options)
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The access token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("The access token is not valid yet") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("The access token has the wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("The access token is not for this audience") from None
        except jwt.InvalidAlgorithmError:
            raise InvalidToken("The access token's algorithm is not allowed") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken("The access token lacks the %s claim" % exc.claim) from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("The access token's signature is invalid") from None
        except InvalidToken:
            raise
        except (jwt.InvalidTokenError, jwt.PyJWKError, ValueError, TypeError):
            raise InvalidToken("The access token is invalid") from None


def claim_identity(claims):
    """(username, roles) from a claim set when no Authorizer is installed:
    ``sub`` (or Skitai's ``user``), ``roles`` (a list or a space-separated
    str) or OAuth's ``scope``."""
    user = claims.get("sub")
    if user is None:
        user = claims.get("user")
    if user is not None and not isinstance(user, str):
        user = str(user)
    roles = claims.get("roles")
    if roles is None:
        roles = claims.get("scope")
    return user, normalize_roles(roles)


def normalize_roles(roles):
    if roles is None:
        return ()
    if isinstance(roles, str):
        return tuple(roles.split())
    if isinstance(roles, (list, tuple, set, frozenset)):
        return tuple(str(r) for r in roles)
    return ()
