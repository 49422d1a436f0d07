"""One request through the gateway: source, token, Authorizer, roles, rate.

``admit(req, policy)`` returns True when the handler may run; otherwise it
has answered the request (RFC 6750 errors):

* no bearer token: 401, ``WWW-Authenticate: Bearer realm="..."``;
* a token that fails (signature, ``alg``, ``exp``/``nbf``, ``iss``/``aud``,
  an Authorizer that calls ``continue_request`` without a user): 401 with
  ``error="invalid_token"``;
* a missing role or a client outside ``source``: 403 with
  ``error="insufficient_scope"``;
* over the rate limit: 429 with ``Retry-After`` and ``RateLimit-*``.

Skitai's Authorizer protocol: a JWT goes to ``handle_claim(handler,
request)`` with ``request.claim`` (verified) and ``request.token``; any
other bearer token (or every token when no JWT key is configured) to
``handle_token(handler, request)``.  Both end with
``handler.continue_request(request, username=None, roles=None)`` -- from
the call itself, from a coroutine (``await kore.dbquery(...)``), or later
from a callback (the request waits ``auth_timeout`` seconds for it).
"""

import json
import sys
from types import CoroutineType

from gevent.event import Event

from kore.aio import drive
from kore.log import LOG, LOG_ERR
from kore.trace import report

from . import txn
from .policy import address_allowed
from .tokens import InvalidToken, normalize_roles


class GatewayState:
    """What the gateway learned about a request (``req.token`` ...)."""

    __slots__ = ("token", "claim", "username", "roles")

    def __init__(self, token=None, claim=None):
        self.token = token
        self.claim = claim
        self.username = None
        self.roles = ()


def state(req):
    st = req.__dict__.get("_gw")
    if st is None:
        st = req.__dict__["_gw"] = GatewayState()
    return st


class AuthHandler:
    """The ``handler`` an Authorizer gets: ``continue_request(request,
    username=None, roles=None)``."""

    __slots__ = ("req", "called", "username", "roles", "event")

    def __init__(self, req):
        self.req = req
        self.called = False
        self.username = None
        self.roles = ()
        self.event = None

    def continue_request(self, request, username=None, roles=None):
        if request is not self.req:
            raise ValueError("continue_request: pass the request handle_token/"
                             "handle_claim received")
        if self.called:
            return None
        self.called = True
        self.username = None if username is None else str(username)
        self.roles = normalize_roles(roles)
        if self.event is not None:
            self.event.set()
        return None

    def __repr__(self):
        return "<kore gateway auth handler>"


def _bearer_header(realm, error=None, description=None, scope=None):
    h = 'Bearer realm="%s"' % realm
    if error:
        h += ', error="%s"' % error
    if description:
        h += ', error_description="%s"' % description.replace('"', "'")
    if scope:
        h += ', scope="%s"' % " ".join(scope).replace('"', "'")
    return h


def refuse(req, g, status, error=None, description=None, scope=None):
    """A 401/403 in RFC 6750's shape, with a small JSON body."""
    if req.has_responded():
        return
    req.response_header("WWW-Authenticate", _bearer_header(g.realm, error, description,
                                                           scope))
    req.response_header("Cache-Control", "no-store")
    body = {"error": error or "unauthorized"}
    if description:
        body["error_description"] = description
    req.response_header("Content-Type", "application/json")
    req.response(status, json.dumps(body).encode("utf-8"))


def _call_authorizer(req, g, fn, where):
    h = AuthHandler(req)
    try:
        res = fn(h, req)
        if type(res) is CoroutineType:
            drive(res)
        if not h.called:
            h.event = Event()
            if not h.event.wait(g.auth_timeout):
                LOG.write(LOG_ERR, "gateway: Authorizer.%s did not call handler."
                          "continue_request(request, ...) within %g s (request %s)"
                          % (where, g.auth_timeout, req.path))
                req.response(503, b"")
                return None
    except Exception:
        report(sys.exc_info(), where="gateway Authorizer.%s" % where, req=req)
        if not req.has_responded():
            req.response(500, b"")
        return None
    return h


def authenticate(req, g, verifier):
    """Set the request's user and roles; False when it was refused."""
    value = req.request_header("authorization")
    # bearer_token(), inlined: this runs on every protected request
    token = value[7:].strip() if value is not None and value[:7].lower() == "bearer " \
        else None
    if not token:
        refuse(req, g, 401)
        return False
    auth = g.authorizer
    if verifier is not None and token.count(".") == 2:      # looks_like_jwt
        try:
            claims, user, roles = verifier.verify_identity(token)
        except InvalidToken as exc:
            refuse(req, g, 401, "invalid_token", str(exc))
            return False
        st = req.__dict__["_gw"] = GatewayState(token, claims)
        fn = getattr(auth, "handle_claim", None) if auth is not None else None
        if fn is not None:
            h = _call_authorizer(req, g, fn, "handle_claim")
            if h is None:
                return False
            user, roles = h.username, h.roles
    else:
        st = req.__dict__["_gw"] = GatewayState(token)
        fn = getattr(auth, "handle_token", None) if auth is not None else None
        if fn is None:
            refuse(req, g, 401, "invalid_token", "The access token is invalid")
            return False
        h = _call_authorizer(req, g, fn, "handle_token")
        if h is None:
            return False
        user, roles = h.username, h.roles
    if user is None:
        refuse(req, g, 401, "invalid_token", "The access token is not valid")
        return False
    st.username = user
    st.roles = roles
    if auth is None and verifier is not None and st.claim is not None:
        verifier.remember(token, st)
    return True


def admit_known(req, g, policy, verifier):
    """The common case, cheaply: a policy of ``mode`` 1 (a token and maybe
    roles), no Authorizer, and a bearer token the verifier verified before
    (``Verifier.known``, which still checks exp/nbf against the clock).
    An HTTP/1.1 request whose raw field block was seen before is matched to
    its token by that block (``Verifier.note_head``).  True when admitted;
    False sends the request down ``admit``."""
    if verifier is None or g.authorizer is not None:
        return False
    f = req._fields
    h1 = type(f) is bytes
    token = verifier.heads.get(f) if h1 else None
    seen = token is not None
    if not seen:
        value = req.request_header("authorization")
        if value is None or value[:7].lower() != "bearer ":
            return False
        token = value[7:].strip()
    st = verifier.known(token)
    if st is None:
        return False
    if h1 and not seen:
        verifier.note_head(f, token)
    if policy.need and policy.need.isdisjoint(st.roles):
        return False
    req.__dict__["_gw"] = st
    return True


def admit(req, g, policy, verifier, limiter):
    """See the module docstring."""
    if policy.source is not None and not address_allowed(
            req.get_proxied_remote_address(), policy.source):
        refuse(req, g, 403, "insufficient_scope", "The client address is not allowed")
        return False
    if policy.auth:
        if not authenticate(req, g, verifier):
            return False
        need = policy.roles
        if need and not set(need).intersection(state(req).roles):
            refuse(req, g, 403, "insufficient_scope", "The access token lacks a role",
                   scope=need)
            return False
    rate = policy.rate
    if rate is not None and rate.limit:
        who = None
        if g.rate_by == "subject":
            st = req.__dict__.get("_gw")
            if st is not None and st.username is not None:
                who = "sub:" + st.username
        if who is None:
            who = "addr:" + req.get_proxied_remote_address()
        d = limiter.check(policy.scope + "|" + who, rate)
        req.response_header("RateLimit-Limit", str(d.limit))
        req.response_header("RateLimit-Remaining", str(max(0, d.remaining)))
        req.response_header("RateLimit-Reset", str(d.reset))
        req.response_header("RateLimit-Policy", "%d;w=%d" % (rate.limit, rate.window))
        if not d.allowed:
            req.response_header("Retry-After", str(d.reset))
            req.response_header("Content-Type", "application/json")
            req.response(429, b'{"error":"rate_limited"}')
            return False
    return True
