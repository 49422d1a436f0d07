"""Hooks of kore-plugin-gateway.

* ``kore_namespace``: ``kore.enable_gateway``, ``kore.gateway_policy``,
  ``@kore.gateway_auth``, ``kore.set_auth_handler`` (Skitai's name);
* ``kore_http_routes`` (runs after the application's routes exist): checks
  that every policy names a route, a mount or a domain that exists;
* ``kore_http_admit`` (``Admission``: registered only when the
  application calls ``kore.enable_gateway``): the current request for
  outgoing calls, then source, token, roles and rate limit;
* ``kore_http_access_log_fields``: ``gtxid``, ``ltxid`` and the token's
  subject as ``user`` (never the token);
* ``kore_httpclient_headers`` (declared by kore-plugin-curl): the
  transaction ids sent on by ``kore.httpclient``;
* ``kore_master_message`` / ``kore_worker_message``: rate-limit leases;
  the master asks ``kore_gateway_counter_store`` (declared here, answered
  by kore-plugin-redis) for a count shared with other hosts.
"""

from kore import hookimpl, runtime

from . import config, policy, txn
from .gate import admit, admit_known
from .ratelimit import MSG_GRANT, MSG_RETURN, MSG_TAKE, Limiter, MasterCounts
from .tokens import Verifier


class Process:
    """Per-process objects, made on first use after fork."""

    def __init__(self):
        self.verifier = None
        self.built_for = None
        self.limiter = Limiter()
        self.master = None

    def get_verifier(self, g):
        if self.built_for is not g:
            self.verifier = Verifier(g) if g.verifies_jwt else None
            self.built_for = g
        return self.verifier


PROC = Process()


@hookimpl
def kore_add_hookspecs(pm):
    from . import hookspecs
    pm.add_hookspecs(hookspecs)


@hookimpl
def kore_namespace():
    return {
        "enable_gateway": config.enable_gateway,
        "set_auth_handler": config.set_authorizer,
        "gateway_policy": policy.gateway_policy,
        "gateway_auth": policy.gateway_auth,
    }


@hookimpl
def kore_app_reset():
    config.reset()
    policy.reset()
    _install_admission(False)


@hookimpl
def kore_http_routes(routes):
    # in the master at application load, before workers fork (the http
    # plugin counts kore_http_handle wrappers when a worker starts serving)
    config.check_loaded()
    policy.REGISTRY.check_targets(routes.domains())
    _install_admission(config.GATEWAY.enabled)


@hookimpl
def kore_worker_init(worker):
    global PROC
    PROC = Process()


class Admission:
    """The ``kore_http_admit`` implementation, registered only while the
    application enabled the gateway: a server that has the plugin installed
    but does not use it pays nothing per request.  A plain hook called
    directly by the http plugin, not a ``kore_http_handle`` wrapper: the
    gateway needs nothing after the handler, and a wrapper's generator
    protocol cost every request about 8,700 instructions more.

    ``txn.CURRENT`` is set to the request here and left set: the next
    request of the greenlet replaces it, and a connection's greenlet runs
    nothing between two of its requests that could make an outgoing call."""

    NAME = "kore-plugin-gateway.admit"

    @staticmethod
    @hookimpl
    def kore_http_admit(req, target):
        txn.CURRENT.set(req)
        g = config.GATEWAY
        pol = policy.REGISTRY.policy_for(target, req.domain, g.app_policy)
        mode = pol.mode
        if mode:
            v = PROC.get_verifier(g)
            if mode != 1 or not admit_known(req, g, pol, v):
                return admit(req, g, pol, v, PROC.limiter)
        return True


def _install_admission(on):
    pm = runtime.plugin_manager()
    if pm is None:
        return
    present = pm.get_plugin(Admission.NAME)
    if on and present is None:
        pm.register(Admission(), name=Admission.NAME)
    elif not on and present is not None:
        pm.unregister(name=Admission.NAME)


@hookimpl
def kore_http_access_log_fields(req):
    t = txn.from_request(req)
    st = req.__dict__.get("_gw")
    return {"gtxid": t.gtxid, "ltxid": t.ltxid,
            "user": st.username if st is not None else None}


@hookimpl
def kore_httpclient_headers(method, url):
    return txn.outgoing_headers()


@hookimpl
def kore_master_message(arbiter, msg):
    if msg.kind != MSG_TAKE and msg.kind != MSG_RETURN:
        return None
    if PROC.master is None:
        shared = runtime.notify("kore_gateway_counter_store",
                                where="kore_gateway_counter_store")
        PROC.master = MasterCounts(shared=shared)
    if msg.kind == MSG_TAKE:
        PROC.master.take(arbiter, msg)
    else:
        PROC.master.give_back(msg)
    return True


@hookimpl
def kore_worker_message(worker, msg):
    if msg.kind != MSG_GRANT:
        return None
    PROC.limiter.granted(msg.payload)
    return True


def _token(req):
    st = req.__dict__.get("_gw")
    return st.token if st is not None else None


def _claim(req):
    st = req.__dict__.get("_gw")
    return st.claim if st is not None else None


def _user(req):
    st = req.__dict__.get("_gw")
    return st.username if st is not None else None


def _roles(req):
    st = req.__dict__.get("_gw")
    return list(st.roles) if st is not None else []


@hookimpl
def kore_http_request_attributes():
    return {
        "token": property(_token, doc="The bearer token (None without one)."),
        "claim": property(_claim, doc="The verified JWT claims (dict) or None."),
        "user": property(_user, doc="The user the token names (None before or "
                                    "without authentication)."),
        "roles": property(_roles, doc="The user's roles (list)."),
        "gtxid": property(lambda req: txn.from_request(req).gtxid,
                          doc="The global transaction id (W3C trace-id)."),
        "ltxid": property(lambda req: txn.from_request(req).ltxid,
                          doc="The local transaction id (1000 from a client)."),
        "txnid": lambda req: txn.from_request(req).txnid(),
    }

