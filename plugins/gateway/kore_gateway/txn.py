"""Transaction ids: Skitai's global/local ids on W3C Trace Context.

Every request has a global id (``gtxid``: 32 lower-case hex digits, laid out
as a UUIDv7 -- a millisecond clock and 74 random bits -- so it is unique
across workers, hosts and restarts and is a valid W3C ``trace-id``) and a
local id (``ltxid``, Skitai's depth-coded number: 1000 for a request from a
client).  Outgoing calls made while the request runs (``kore.httpclient``,
a proxy) carry ``X-Gtxn-Id``, ``X-Ltxn-Id`` and ``traceparent``; the n-th
call of a request whose local id is L sends L + 1000 + n (1000 -> 2001,
2002; 2001 -> 3002), as Skitai documents.

Incoming ``X-Gtxn-Id`` / ``X-Ltxn-Id`` / ``traceparent`` are honoured only
from peers in ``--forwarded-allow-ips`` (``stream.trusted``); anyone else
gets fresh ids.  Ids are made on first use (the access log, an outgoing
call, ``req.gtxid``), so a request that needs none costs nothing.

``CURRENT`` is the request whose handler runs in this greenlet (set by the
gateway's ``kore_http_admit``, left until the greenlet's next request;
greenlets have their own contextvars context), which is how
``kore.httpclient`` finds the ids.
"""

import contextvars
import hashlib
import os
import re
import time

CURRENT = contextvars.ContextVar("kore_gateway_request", default=None)

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_GTXID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
FRESH_LTXID = 1000
MAX_LTXID = 10 ** 15


def new_trace_id():
    """32 hex digits in the UUIDv7 layout (version 7, RFC 9562 variant)."""
    ms = int(time.time() * 1000) & 0xFFFFFFFFFFFF
    r = int.from_bytes(os.urandom(10), "big")
    rand_a = r >> 68                      # 12 bits
    rand_b = r & ((1 << 62) - 1)          # 62 bits
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return "%032x" % value


def new_span_id():
    s = os.urandom(8).hex()
    return s if s != "0000000000000000" else new_span_id()


def trace_id_for(gtxid):
    """The W3C trace-id of a global id: itself when it is one, else a hash
    (a Skitai id like ``GTID-C3-R8`` from an older hop)."""
    if _HEX32.match(gtxid) and gtxid != "0" * 32:
        return gtxid
    return hashlib.sha256(gtxid.encode("utf-8")).hexdigest()[:32]


def parse_traceparent(value):
    """(trace_id, parent_id, flags) of a valid ``traceparent`` or None."""
    if not value:
        return None
    m = _TRACEPARENT.match(value.strip().lower())
    if m is None or m.group(1) == "ff":
        return None
    version, trace, parent, flags = m.groups()
    if trace == "0" * 32 or parent == "0" * 16:
        return None
    if version == "00" and len(value.strip()) != 55:
        return None
    return trace, parent, flags


class Txn:
    """The ids of one request."""

    __slots__ = ("gtxid", "ltxid", "trace_id", "parent_id", "span_id", "flags", "calls")

    def __init__(self, gtxid, ltxid, trace_id, parent_id, flags):
        self.gtxid = gtxid
        self.ltxid = ltxid
        self.trace_id = trace_id
        self.parent_id = parent_id     # the caller's span, from traceparent
        self.span_id = new_span_id()   # this request's span
        self.flags = flags
        self.calls = 0

    def txnid(self):
        """Skitai's ``was.txnid()``: "gtxid/ltxid"."""
        return "%s/%d" % (self.gtxid, self.ltxid)

    def outgoing(self):
        """Headers for the next outgoing call (increments the call count)."""
        self.calls += 1
        child = self.ltxid + 1000 + self.calls
        return {"X-Gtxn-Id": self.gtxid, "X-Ltxn-Id": str(child),
                "traceparent": "00-%s-%s-%s" % (self.trace_id, new_span_id(), self.flags)}


def from_request(req):
    """The ids of ``req``, made (and stored on it) on first use."""
    d = req.__dict__
    t = d.get("_gw_txn")
    if t is None:
        t = d["_gw_txn"] = _begin(req)
    return t


def _begin(req):
    if req.stream.trusted:
        tp = parse_traceparent(req.request_header("traceparent"))
        gx = req.request_header("x-gtxn-id")
        if gx is not None:
            gx = gx.strip()
            if not _GTXID.match(gx):
                gx = None
        if gx is not None or tp is not None:
            lx = req.request_header("x-ltxn-id")
            try:
                ltxid = int(lx) if lx is not None else FRESH_LTXID
                if not 0 < ltxid < MAX_LTXID:
                    ltxid = FRESH_LTXID
            except ValueError:
                ltxid = FRESH_LTXID
            if gx is None:
                gx = tp[0]
            trace = tp[0] if tp is not None else trace_id_for(gx)
            return Txn(gx, ltxid, trace, tp[1] if tp else None, tp[2] if tp else "01")
    trace = new_trace_id()
    return Txn(trace, FRESH_LTXID, trace, None, "01")


def outgoing_headers():
    """Headers for an outgoing call from the current request, or None."""
    req = CURRENT.get()
    if req is None:
        return None
    return from_request(req).outgoing()
