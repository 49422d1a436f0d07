"""The gateway test application: HS256 JWTs, Skitai's Authorizer (sync,
coroutine awaiting kore.httpclient, callback), roles, sources, a WSGI
mount, nested calls."""

import json
import os

import gevent

import kore

SECRET = os.environ["GW_SECRET"]


def base():
    """This server's own URL (the port it listens on: --bind may say 0)."""
    from kore_http import listeners
    _, host, port = listeners.LISTENERS[0].address
    return "http://%s:%d" % (host, port)


class Authorizer:
    tokens = {"opaque-sync": ("alice", ["user"]), "opaque-admin": ("root", ["admin"])}

    def handle_token(self, handler, request):
        tok = request.token
        if tok == "opaque-async":
            return self._introspect(handler, request)
        if tok == "opaque-later":
            # Skitai's callback style: continue_request from another greenlet
            gevent.spawn_later(0.05, handler.continue_request, request, "carol", ["user"])
            return None
        if tok == "opaque-boom":
            raise RuntimeError("the token database is down")
        if tok == "opaque-silent":
            return None       # never continues: the request times out (503)
        user = self.tokens.get(tok)
        if user is None:
            return handler.continue_request(request)
        return handler.continue_request(request, *user)

    async def _introspect(self, handler, request):
        client = kore.httpclient(base() + "/introspect")
        status, body = await client.post(body=request.token.encode())
        info = json.loads(body)
        handler.continue_request(request, info["user"], info["roles"])

    def handle_claim(self, handler, request):
        claim = request.claim
        if claim.get("revoked"):
            return handler.continue_request(request)
        handler.continue_request(request, claim.get("sub"), claim.get("roles"))


kore.enable_gateway(True, SECRET, realm="API", issuer="https://idp.test", audience="api",
                    authorizer=Authorizer(), auth_timeout=1)


def _me(req):
    return {"user": req.user, "roles": req.roles, "token_kind":
            "jwt" if req.claim is not None else "opaque",
            "gtxid": req.gtxid, "ltxid": req.ltxid, "pid": os.getpid()}


@kore.route("/whoami", methods=["get"])
def whoami(req):
    req.response_header("content-type", "application/json")
    req.response(200, json.dumps(_me(req)).encode())


@kore.gateway_auth(roles=["admin"])
@kore.route("/admin", methods=["get"])
def admin(req):
    req.response(200, b"admin area")


@kore.route("/ops", methods=["get"])
def ops(req):
    req.response(200, b"ops area")


kore.gateway_policy("/ops", role="ops")


@kore.route("/public", methods=["get"])
def public(req):
    req.response(200, ("public %s" % req.user).encode())


kore.gateway_policy(public, auth=False)


@kore.route("/lan", methods=["get"])
def lan(req):
    req.response(200, b"lan")


kore.gateway_policy("/lan", auth=False, source="10.0.0.0/8, 2001:db8::/32")


@kore.route("/lan-token", methods=["get"])
def lan_token(req):
    req.response(200, b"lan with token")


kore.gateway_policy(lan_token, source=["192.168.1/24"], roles=["user"])


@kore.route("/introspect", methods=["post"])
def introspect(req):
    req.response_header("content-type", "application/json")
    req.response(200, json.dumps({"user": "bob", "roles": ["user", "async"]}).encode())


kore.gateway_policy("/introspect", auth=False)


@kore.route("/echo-ids", methods=["get"])
def echo_ids(req):
    req.response_header("content-type", "application/json")
    req.response(200, json.dumps({h: req.request_header(h) for h in (
        "x-gtxn-id", "x-ltxn-id", "traceparent", "authorization")}).encode())


kore.gateway_policy("/echo-ids", auth=False)


@kore.route("/call", methods=["get"])
async def call(req):
    c = kore.httpclient(base() + "/echo-ids")
    _, first = await c.get()
    _, second = await c.get()
    _, mine = await c.get(headers={"X-Ltxn-Id": "7"})
    req.response_header("content-type", "application/json")
    req.response(200, json.dumps({"me": _me(req), "calls": [
        json.loads(first), json.loads(second), json.loads(mine)]}).encode())


def wsgi_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi " + environ["PATH_INFO"].encode()]


kore.mount("/wsgi", wsgi_app)
kore.gateway_policy("/wsgi", roles=["user"])
