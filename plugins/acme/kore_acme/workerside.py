"""The worker's side: challenge answers and new certificates from the master.

Messages from the master (JSON payloads):

``acme.alpn``     ``{"id", "name", "cert", "key"}``: serve this tls-alpn-01
                  certificate to handshakes for ``name`` offering acme-tls/1
``acme.http``     ``{"id", "token", "value"}``: answer
                  ``/.well-known/acme-challenge/<token>`` with ``value``
``acme.withdraw`` ``{"id"}``: the challenge is over
``acme.cert``     ``{"host", "chain", "key"}``: the issued chain and its key,
                  loaded in memory into every context of ``host`` (new
                  handshakes get it, open connections keep theirs)

The worker answers ``acme.alpn`` and ``acme.http`` with ``acme.ack``
``{"id"}`` once it serves them, and sends ``acme.hello`` when it starts so
the master repeats the challenges in progress.
"""

import json
import ssl

from kore import ipc
from kore.log import error, info

from . import memload
from .settings import DOMAINS

ACME_TLS = "acme-tls/1"

CHALLENGES = {}     # server name -> SSLContext serving the tls-alpn-01 cert
TOKENS = {}         # http-01 token -> key authorization
_ITEMS = {}         # id -> ("alpn", name) | ("http", token)


def hello(worker):
    if DOMAINS:
        worker.send(ipc.Message("acme.hello", b""))


def _ack(worker, item_id):
    try:
        worker.send(ipc.Message("acme.ack", json.dumps({"id": item_id})))
    except ipc.ChannelClosed:
        pass


def challenge_context(cert_pem, key_pem):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols([ACME_TLS])
    memload.load(ctx, cert_pem, key_pem)
    return ctx


def install_chain(host, chain_pem, key_pem):
    """Load a chain into every context of ``host``; returns how many."""
    n = 0
    for domain, ctx in DOMAINS.get(host, ()):
        memload.load(ctx, chain_pem, key_pem)
        n += 1
    return n


def on_message(worker, msg):
    kind = msg.kind
    if not kind.startswith("acme."):
        return None
    data = json.loads(msg.payload.decode("utf-8")) if msg.payload else {}
    if kind == "acme.alpn":
        CHALLENGES[data["name"]] = challenge_context(data["cert"].encode(),
                                                     data["key"].encode())
        _ITEMS[data["id"]] = ("alpn", data["name"])
        _ack(worker, data["id"])
    elif kind == "acme.http":
        TOKENS[data["token"]] = data["value"]
        _ITEMS[data["id"]] = ("http", data["token"])
        _ack(worker, data["id"])
    elif kind == "acme.withdraw":
        item = _ITEMS.pop(data["id"], None)
        if item is not None and item[0] == "alpn":
            CHALLENGES.pop(item[1], None)
        elif item is not None:
            TOKENS.pop(item[1], None)
    elif kind == "acme.cert":
        host = data["host"]
        try:
            n = install_chain(host, data["chain"].encode(), data["key"].encode())
        except (ssl.SSLError, OSError, memload.MemoryLoadError) as exc:
            error("acme: cannot load the new certificate for %s: %s (still serving "
                  "the previous one)" % (host, exc))
        else:
            info("acme: new certificate for %s in use (%d context%s)"
                 % (host, n, "" if n == 1 else "s"))
    else:
        return None
    return True


def tls_context(server_name, offered_alpn):
    """The tls-alpn-01 context for a validation handshake, else None."""
    if offered_alpn and ACME_TLS in offered_alpn and server_name in CHALLENGES:
        return CHALLENGES[server_name]
    return None


def http01(req, token):
    value = TOKENS.get(token)
    if value is None:
        req.response(404, b"")
        return
    req.response_header("content-type", "text/plain")
    req.response(200, value.encode("ascii"))
