"""An API gateway on kore for Python: JWTs, Skitai's Authorizer, roles,
client networks, a rate limit and transaction ids.

    GATEWAY_SECRET=change-me-to-32-random-bytes-0001 korectl run app.py
    python make_token.py alice user        # prints a token (PyJWT, HS256)
    curl -H "Authorization: Bearer $(python make_token.py alice user)" \
         http://127.0.0.1:8888/api/me
    curl -H "Authorization: Bearer opaque-demo-token" http://127.0.0.1:8888/api/me
    curl http://127.0.0.1:8888/health

Every answer carries the transaction ids in the access log (``--access-log -``);
``/api/fanout`` calls ``/api/echo`` twice through kore.httpclient, which sends
``X-Gtxn-Id``, ``X-Ltxn-Id`` (2001, 2002) and ``traceparent`` on.
"""

import json
import os

import kore

PORT = os.environ.get("PORT", "8888")
SECRET = os.environ.get("GATEWAY_SECRET", "change-me-to-32-random-bytes-0001")

kore.server("default", ip="127.0.0.1", port=PORT, tls=False)
kore.domain("*", attach="default")


class Authorizer:
    """Skitai's protocol: opaque tokens from a table, JWT claims checked
    against a revocation list; both end in handler.continue_request()."""

    tokens = {"opaque-demo-token": ("demo", ["user"])}
    revoked = set()

    def handle_token(self, handler, request):
        user = self.tokens.get(request.token)
        if user is None:
            return handler.continue_request(request)       # 401 invalid_token
        handler.continue_request(request, *user)

    def handle_claim(self, handler, request):
        claim = request.claim
        if claim.get("jti") in self.revoked:
            return handler.continue_request(request)
        handler.continue_request(request, claim["sub"], claim.get("roles"))


kore.enable_gateway(True, SECRET, realm="example API", authorizer=Authorizer(),
                    rate_limit="120/minute")


def reply(req, obj):
    req.response_header("content-type", "application/json")
    req.response(200, json.dumps(obj).encode())


@kore.route("/api/me", methods=["get"])
def me(req):
    reply(req, {"user": req.user, "roles": req.roles, "txn": req.txnid()})


@kore.gateway_auth(roles=["admin"])
@kore.route("/api/admin", methods=["get"])
def admin(req):
    reply(req, {"admin": req.user})


@kore.route("/api/echo", methods=["get"])
def echo(req):
    reply(req, {"gtxid": req.request_header("x-gtxn-id"),
                "ltxid": req.request_header("x-ltxn-id")})


@kore.route("/api/fanout", methods=["get"])
async def fanout(req):
    client = kore.httpclient("http://127.0.0.1:%s/api/echo" % PORT)
    token = {"Authorization": "Bearer " + req.token}
    _, a = await client.get(headers=token)
    _, b = await client.get(headers=token)
    reply(req, {"me": req.txnid(), "calls": [json.loads(a), json.loads(b)]})


@kore.route("/health", methods=["get"])
def health(req):
    req.response(200, b"ok\n")


kore.gateway_policy("/health", auth=False, rate_limit=False)
# the operators' network only, IPv4 or IPv6
kore.gateway_policy(health, source="127.0.0.0/8, ::1")
