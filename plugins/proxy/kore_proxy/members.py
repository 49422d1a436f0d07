"""Skitai's alias members, parsed (pure functions).

A member is ``[user:pass@]host[:port][/basepath] [weight]``: the weight is
the integer after a space (default 1), the port defaults to 80 (443 for
``https``/``wss`` aliases).  ``host`` may be an IPv6 address in brackets.
"""

import base64

from kore.config import ConfigError

PROTO_HTTP = "http"
PROTO_HTTPS = "https"
PROTO_WS = "ws"
PROTO_WSS = "wss"
PROTOCOLS = (PROTO_HTTP, PROTO_HTTPS, PROTO_WS, PROTO_WSS)


class Member:
    __slots__ = ("host", "port", "weight", "basepath", "authorization", "spec")

    def __repr__(self):
        return "<member %s:%d w=%d>" % (self.host, self.port, self.weight)

    @property
    def address(self):
        """"host:port" as logs and the Host header name it."""
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)


def parse_member(spec, secure, where):
    """One member string -> Member; ConfigError naming ``where``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("%s: a member must be a str 'host:port [weight]', got %r"
                          % (where, spec))
    parts = spec.split()
    if len(parts) > 2:
        raise ConfigError("%s: member %r: expected 'host:port [weight]'" % (where, spec))
    m = Member()
    m.spec = spec
    m.weight = 1
    if len(parts) == 2:
        try:
            m.weight = int(parts[1])
        except ValueError:
            raise ConfigError("%s: member %r: the weight must be an integer"
                              % (where, spec)) from None
        if not 1 <= m.weight <= 1000:
            raise ConfigError("%s: member %r: the weight must be 1..1000" % (where, spec))
    addr = parts[0]
    for scheme in ("http://", "https://", "ws://", "wss://"):
        if addr.startswith(scheme):
            addr = addr[len(scheme):]
    m.authorization = None
    if "@" in addr:
        cred, addr = addr.rsplit("@", 1)
        token = base64.b64encode(cred.encode("utf-8")).decode("ascii")
        m.authorization = "Basic " + token
    slash = addr.find("/")
    if slash >= 0:
        m.basepath = addr[slash:].rstrip("/")
        addr = addr[:slash]
    else:
        m.basepath = ""
    port = 443 if secure else 80
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            raise ConfigError("%s: member %r: unclosed '['" % (where, spec))
        host = addr[1:end]
        rest = addr[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError("%s: member %r: bad address" % (where, spec))
            port = rest[1:]
    elif addr.count(":") == 1:
        host, port = addr.split(":")
    elif ":" in addr:
        host = addr              # a bare IPv6 address
    else:
        host = addr
    if not host:
        raise ConfigError("%s: member %r: missing host" % (where, spec))
    try:
        port = int(port)
    except ValueError:
        raise ConfigError("%s: member %r: bad port %r" % (where, spec, port)) from None
    if not 0 < port < 65536:
        raise ConfigError("%s: member %r: bad port %d" % (where, spec, port))
    m.host = host
    m.port = port
    return m


def parse_target(target):
    """'@name' or '@name/base' -> (name, base); None for other values."""
    if not isinstance(target, str) or not target.startswith("@"):
        return None
    name, slash, base = target[1:].partition("/")
    return name, ("/" + base).rstrip("/") if slash else ""
