"""A JWKS URL's keys, fetched on first use and cached per worker.

The set is fetched once and kept ``jwks_ttl`` seconds (then refetched on
the next token).  A token naming a ``kid`` the set lacks triggers one
refetch (a key rotation); a ``kid`` still unknown after it is remembered
as unknown for ``jwks_ttl`` seconds, so repeating that token costs no
fetch, and unknown-kid refetches are capped at ``REFETCH_PER_MINUTE`` so a
flood of made-up ids cannot hammer the identity provider.  Concurrent
requests share one fetch.  A failed fetch keeps the keys already known.

The fetch uses ``urllib`` (cooperative: kore workers run gevent's monkey
patching), so no other plugin is needed for it.
"""

import json
import time
import urllib.request

import jwt
from gevent.lock import Semaphore

from kore.log import LOG, LOG_ERR

from .errors import InvalidToken

REFETCH_PER_MINUTE = 10
_FAMILY = {"RSA": ("RS", "PS"), "EC": ("ES",), "OKP": ("EdDSA",)}


def _invalid(text):
    return InvalidToken(text)


class JwksCache:
    def __init__(self, url, ttl, timeout):
        self.url = url
        self.ttl = ttl or 300.0
        self.timeout = timeout
        self.keys = {}            # kid (or "") -> (PyJWK, jwk dict)
        self.fetched = 0.0        # monotonic time of the last successful fetch
        self.fetches = 0
        self.unknown = {}         # kid -> monotonic time it was found unknown
        self.refetches = []       # monotonic times of unknown-kid refetches
        self.lock = Semaphore()

    # -- fetching ----------------------------------------------------------

    def _fetch(self):
        self.fetches += 1
        try:
            req = urllib.request.Request(self.url, headers={"Accept": "application/json"})
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data = json.loads(resp.read(1024 * 1024).decode("utf-8"))
            entries = data["keys"]
            if not isinstance(entries, list):
                raise ValueError("'keys' is not a list")
        except Exception as exc:
            LOG.write(LOG_ERR, "gateway: fetching the JWKS %s failed: %s (keeping %d "
                      "known keys)" % (self.url, exc, len(self.keys)))
            return False
        keys = {}
        for d in entries:
            if not isinstance(d, dict) or d.get("use", "sig") != "sig":
                continue
            try:
                k = jwt.PyJWK(d)
            except Exception:
                continue
            keys[str(d.get("kid", ""))] = (k, d)
        self.keys = keys
        self.fetched = time.monotonic()
        self.unknown.clear()
        return True

    def _refresh(self, expected_fetches):
        with self.lock:
            if self.fetches == expected_fetches:   # nobody fetched meanwhile
                self._fetch()

    def _may_refetch(self, kid, now):
        t = self.unknown.get(kid)
        if t is not None and now - t < self.ttl:
            return False
        self.refetches = [x for x in self.refetches if now - x < 60.0]
        return len(self.refetches) < REFETCH_PER_MINUTE

    # -- lookup --------------------------------------------------------------

    def key_for(self, token, algorithms):
        """(key, algorithm) to verify ``token``; InvalidToken otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _invalid("The access token is invalid") from None
        alg = header.get("alg")
        if alg not in algorithms:
            raise _invalid("The access token's algorithm is not allowed")
        kid = header.get("kid")
        kid = "" if kid is None else str(kid)
        now = time.monotonic()
        if not self.fetched or now - self.fetched > self.ttl:
            self._refresh(self.fetches)
        entry = self._find(kid)
        if entry is None and self._may_refetch(kid, now):
            self.refetches.append(now)
            self._refresh(self.fetches)
            entry = self._find(kid)
            if entry is None:
                if len(self.unknown) > 1024:
                    self.unknown.clear()
                self.unknown[kid] = time.monotonic()
        if entry is None:
            raise _invalid("The access token's key id is unknown")
        k, d = entry
        jwk_alg = d.get("alg")
        if jwk_alg is not None and jwk_alg != alg:
            raise _invalid("The access token's algorithm does not match its key")
        if not alg.startswith(_FAMILY.get(d.get("kty"), ())):
            raise _invalid("The access token's algorithm does not match its key")
        return k.key, alg

    def _find(self, kid):
        if kid:
            return self.keys.get(kid)
        if len(self.keys) == 1:
            return next(iter(self.keys.values()))
        return self.keys.get("")
