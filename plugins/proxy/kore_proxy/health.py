"""Active health checks (``kore.alias(..., health="/healthz")``) and the
idle-pool sweep, run by a greenlet in each worker.

Every ``health_interval`` seconds each node of an alias gets ``GET
<health>`` on a fresh connection; a 2xx or 3xx answer within the interval
is a pass.  ``fall`` failures in a row take the node out, ``rise`` passes
in a row bring it back (HAProxy's ``check inter rise fall``); each change
is logged (``balancer.Balancer.check_result``).
"""

import time

import gevent

from . import h1client as h11
from .client import ConnectFailed, UpstreamError, UpstreamTimeout, connect

monotonic = time.monotonic


def check_once(a, node):
    """(ok, why) of one health request to ``node`` of alias ``a``."""
    timeout = min(a.health_interval, a.connect_timeout)
    try:
        up = connect(node, timeout, max(timeout, a.health_interval),
                     a.ssl_context(), node.member.host)
    except ConnectFailed as exc:
        return False, "connect: %s" % exc
    try:
        up.send(h11.Request(method="GET", target=node.member.basepath + a.health,
                            headers=[("host", a.upstream_host(node, "")),
                                     ("user-agent", "kore-proxy-health"),
                                     ("connection", "close")]))
        up.send(h11.EndOfMessage())
        ev = up.next_event()
        while isinstance(ev, h11.InformationalResponse):
            ev = up.next_event()
        code = ev.status_code
        if 200 <= code < 400:
            return True, ""
        return False, "status %d" % code
    except (UpstreamError, UpstreamTimeout) as exc:
        return False, str(exc)
    finally:
        up.close()


def _check_alias(a):
    while True:
        t0 = monotonic()
        jobs = [gevent.spawn(check_once, a, n) for n in a.nodes]
        gevent.joinall(jobs)
        for node, job in zip(a.nodes, jobs):
            ok, why = job.value if job.successful() else (False, repr(job.exception))
            a.balancer.check_result(node, ok, a.rise, a.fall, why)
        gevent.sleep(max(0.05, a.health_interval - (monotonic() - t0)))


def _sweep(aliases):
    while True:
        gevent.sleep(1.0)
        now = monotonic()
        for a in aliases:
            a.pool.prune(a.nodes, now)


class Checker:
    """The worker's greenlets: one per alias with health checks, one sweep."""

    def __init__(self):
        self.glets = []

    def start(self, aliases):
        for a in aliases:
            if a.health:
                self.glets.append(gevent.spawn(_check_alias, a))
        if aliases:
            self.glets.append(gevent.spawn(_sweep, list(aliases)))

    def stop(self):
        for g in self.glets:
            g.kill(block=False)
        self.glets = []


CHECKER = Checker()
