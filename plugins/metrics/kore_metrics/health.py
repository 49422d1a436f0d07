"""``/healthz`` (liveness) and ``/readyz`` (readiness), answered by every
worker before the application's routes.

* ``/healthz``: 200 ``ok`` while the worker's event loop is responsive,
  503 when it was blocked longer than ``health_block_ms``;
* ``/readyz``: 503 before every worker reported ready, while this worker
  drains (SIGTERM), and when a ``kore_ready_check`` hook or a check the
  application registered with ``kore.ready_check(fn)`` says not ready;
  200 otherwise: ``{"status": "pass"}``, or ``{"status": "warn", "output":
  ...}`` when a ``kore_ready_degraded`` hook says something works only in
  part (a backplane disconnected: the worker still serves).
"""

import json

from kore import runtime

from . import worker as W

CHECKS = []     # the application's kore.ready_check functions


def ready_check(fn):
    """``kore.ready_check(fn)`` (also a decorator): ``fn()`` returns None or
    True when ready, or a string saying why not."""
    if not callable(fn):
        raise TypeError("kore.ready_check: expected a function, got %r" % (fn,))
    CHECKS.append(fn)
    return fn


def _answer(req, status, doc):
    body = json.dumps(doc, separators=(",", ":")).encode()
    req.response_header("content-type", "application/health+json")
    req.response_header("cache-control", "no-store")
    req.response(status, body)


def healthz(req):
    blocked = W.loop_blocked()
    limit = runtime.option("health_block_ms") / 1000.0
    if blocked > limit:
        _answer(req, 503, {"status": "fail", "output": "event loop blocked %.0f ms"
                           % (blocked * 1000)})
    else:
        _answer(req, 200, {"status": "pass"})


def reasons():
    """Why this worker is not ready (empty when it is)."""
    out = []
    st = W.STATE
    if st.draining or (st.worker is not None and st.worker.stopping):
        out.append("draining")
    if not st.all_ready:
        out.append("workers starting")
    for fn in CHECKS:
        out.extend(_run(fn, getattr(fn, "__name__", "check")))
    for res in runtime.notify("kore_ready_check", where="kore_ready_check hook"):
        if res is not None and res is not True:
            out.append(str(res))
    return out


def _run(fn, name):
    try:
        res = fn()
    except Exception as exc:
        return ["%s: %s: %s" % (name, type(exc).__name__, exc)]
    if res is None or res is True:
        return []
    return [str(res) if res is not False else "%s: not ready" % name]


def degraded():
    """What works only in part in this worker (empty when nothing)."""
    out = []
    for res in runtime.notify("kore_ready_degraded", where="kore_ready_degraded hook"):
        if res:
            out.append(str(res))
    return out


def readyz(req):
    why = reasons()
    if why:
        _answer(req, 503, {"status": "fail", "output": "; ".join(why)})
        return
    warn = degraded()
    if warn:
        _answer(req, 200, {"status": "warn", "output": "; ".join(warn)})
    else:
        _answer(req, 200, {"status": "pass"})
