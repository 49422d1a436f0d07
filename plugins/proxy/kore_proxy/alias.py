"""``kore.alias``: a named group of upstream servers and how to reach them.

Declared in the master (module level or ``koreapp.configure``); each worker
inherits the aliases through fork and keeps its own balancing and health
state (as each nginx worker does).
"""

import ssl

from kore.config import ConfigError

from .balancer import POLICIES, Balancer
from .client import Pool
from .members import PROTOCOLS, PROTO_HTTPS, PROTO_WSS, parse_member

ALIASES = {}      # name -> Alias


def reset():
    ALIASES.clear()


def _number(name, value, where, lo, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError("%s: %s must be a number, got %r" % (where, name, value))
    if integer and int(value) != value:
        raise ConfigError("%s: %s must be an integer, got %r" % (where, name, value))
    if value < lo:
        raise ConfigError("%s: %s must be >= %s, got %r" % (where, name, lo, value))
    return int(value) if integer else float(value)


class Alias:
    """What ``kore.alias`` declared, plus the worker's balancer and pool."""

    def __init__(self, name, ctype, members, role="", source="", ssl_=False,
                 max_conns=32, policy="round_robin", max_fails=1, fail_timeout=10,
                 health=None, health_interval=2, rise=2, fall=3, connect_timeout=5,
                 read_timeout=60, keepalive=None, idle_timeout=4, host_header=None,
                 retry_body_max=65536, ssl_verify=True):
        where = "kore.alias('@%s')" % name
        if ctype not in PROTOCOLS:
            raise ConfigError("%s: unknown type %r (use kore.PROTO_HTTP, PROTO_HTTPS, "
                              "PROTO_WS or PROTO_WSS)" % (where, ctype))
        self.name = name
        self.ctype = ctype
        self.secure = bool(ssl_) or ctype in (PROTO_HTTPS, PROTO_WSS)
        if isinstance(members, str):
            members = [members]
        if not isinstance(members, (list, tuple)) or not members:
            raise ConfigError("%s: members must be a non-empty list of "
                              "'host:port [weight]' strings" % where)
        self.members = [parse_member(m, self.secure, where) for m in members]
        self.role = role
        self.source = source
        if policy not in POLICIES:
            raise ConfigError("%s: policy must be one of %s, got %r"
                              % (where, ", ".join(POLICIES), policy))
        self.max_conns = _number("max_conns", max_conns, where, 1, True)
        self.max_fails = _number("max_fails", max_fails, where, 0, True)
        self.fail_timeout = _number("fail_timeout", fail_timeout, where, 0.1)
        if health is not None and (not isinstance(health, str) or not health.startswith("/")):
            raise ConfigError("%s: health must be a path starting with /, got %r"
                              % (where, health))
        self.health = health
        self.health_interval = _number("health_interval", health_interval, where, 0.1)
        self.rise = _number("rise", rise, where, 1, True)
        self.fall = _number("fall", fall, where, 1, True)
        self.connect_timeout = _number("connect_timeout", connect_timeout, where, 0.01)
        self.read_timeout = _number("read_timeout", read_timeout, where, 0.01)
        keepalive = self.max_conns if keepalive is None else keepalive
        self.keepalive = _number("keepalive", keepalive, where, 0, True)
        self.idle_timeout = _number("idle_timeout", idle_timeout, where, 0.1)
        if host_header is not None and not isinstance(host_header, str):
            raise ConfigError("%s: host_header must be None (keep the client's Host), "
                              "'upstream' or a host name, got %r" % (where, host_header))
        self.host_header = host_header
        self.retry_body_max = _number("retry_body_max", retry_body_max, where, 0, True)
        self.ssl_verify = bool(ssl_verify)
        self.balancer = Balancer(name, self.members, policy, self.max_fails,
                                 self.fail_timeout)
        self.pool = Pool(self.keepalive, self.idle_timeout)
        self._ssl = None

    def __repr__(self):
        return "<kore.alias @%s %s>" % (self.name, [m.address for m in self.members])

    @property
    def nodes(self):
        return self.balancer.nodes

    def ssl_context(self):
        if not self.secure:
            return None
        if self._ssl is None:
            ctx = ssl.create_default_context()
            if not self.ssl_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl = ctx
        return self._ssl

    def upstream_host(self, node, client_host):
        """The Host sent to ``node``: the client's by default."""
        h = self.host_header
        if h is None:
            return client_host or node.member.address
        if h == "upstream":
            m = node.member
            default = 443 if self.secure else 80
            return m.host if m.port == default else m.address
        return h


def alias(name, ctype, members, role="", source="", ssl=False, max_conns=32, **options):
    """kore.alias('@name', kore.PROTO_HTTP, ["host:port weight", ...], role=,
    source=, ssl=, max_conns=, policy=, max_fails=, fail_timeout=, health=,
    health_interval=, rise=, fall=, connect_timeout=, read_timeout=,
    keepalive=, idle_timeout=, host_header=, retry_body_max=, ssl_verify=)."""
    if not isinstance(name, str) or not name.lstrip("@"):
        raise ConfigError("kore.alias: the name must be a str like '@api', got %r" % (name,))
    name = name.lstrip("@")
    if "/" in name:
        raise ConfigError("kore.alias('@%s'): a name cannot contain '/'" % name)
    if name in ALIASES:
        raise ConfigError("kore.alias('@%s'): the alias already exists" % name)
    known = ("policy", "max_fails", "fail_timeout", "health", "health_interval", "rise",
             "fall", "connect_timeout", "read_timeout", "keepalive", "idle_timeout",
             "host_header", "retry_body_max", "ssl_verify")
    for k in options:
        if k not in known:
            raise ConfigError("kore.alias('@%s'): unknown option %r (known: %s)"
                              % (name, k, ", ".join(known)))
    ALIASES[name] = Alias(name, ctype, members, role, source, ssl, max_conns, **options)
    return None


def get(name, where):
    a = ALIASES.get(name)
    if a is None:
        raise ConfigError("%s: no alias '@%s' (declare it with kore.alias('@%s', "
                          "kore.PROTO_HTTP, [...]); known: %s)"
                          % (where, name, name, ", ".join("@" + n for n in ALIASES) or "none"))
    return a
