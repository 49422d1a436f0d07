"""Who may call what: policies per application, domain, route and mount.

A ``Policy`` says whether a bearer token is required (``auth``), which
roles the token's user needs (any one of ``roles``), which client
addresses may call (``source``: IPv4 and IPv6 CIDRs) and an optional rate
limit.  Unset fields (None) fall through to the wider scope:

    route or mount  >  domain  >  application (``kore.enable_gateway``)

``kore.gateway_policy(target, ...)`` records one; ``target`` is a route's
path (as declared), a mount's prefix, a handler function, ``"*"`` for the
whole application, or None with ``domain=`` for one domain.
``@kore.gateway_auth(...)`` is the decorator form for a handler.  Mount
objects (a proxy plugin's) may carry ``roles``/``role`` and ``source``
attributes: Skitai's ``alias(..., role=, source=)``.
"""

import ipaddress
import re

from kore.config import ConfigError

_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60,
          "minute": 60, "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


class Rate:
    __slots__ = ("limit", "window")

    def __init__(self, limit, window):
        self.limit = limit
        self.window = window

    def __repr__(self):
        return "%d/%ds" % (self.limit, self.window)

    def __eq__(self, other):
        return isinstance(other, Rate) and (self.limit, self.window) == (other.limit,
                                                                         other.window)

    __hash__ = None


NO_RATE = Rate(0, 0)


def parse_rate(value, where):
    """"100/minute", "10/s", "5/30s" or (limit, seconds) -> Rate; None ->
    None (inherit); False -> ``NO_RATE`` (no limit, overriding a wider one)."""
    if value is None:
        return None
    if value is False:
        return NO_RATE
    if isinstance(value, Rate):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        limit, window = value
    elif isinstance(value, str):
        m = _RATE.match(value.lower())
        if not m or m.group(3) not in _UNITS:
            raise ConfigError("%s: rate_limit %r: write 'N/second', 'N/minute', "
                              "'N/hour', 'N/day' or 'N/30s'" % (where, value))
        limit = int(m.group(1))
        window = int(m.group(2) or 1) * _UNITS[m.group(3)]
    else:
        raise ConfigError("%s: rate_limit must be 'N/minute' or (N, seconds), got %r"
                          % (where, value))
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError("%s: rate_limit needs at least 1 request per window" % where)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError("%s: rate_limit window must be whole seconds >= 1" % where)
    return Rate(limit, window)


def parse_network(text, where):
    """A CIDR, a bare address, or Skitai's short IPv4 form ("192.168.1/24")."""
    s = text.strip()
    addr, slash, bits = s.partition("/")
    if ":" not in addr and addr.count(".") < 3 and addr.replace(".", "").isdigit():
        addr = ".".join((addr.split(".") + ["0", "0", "0"])[:4])
    try:
        return ipaddress.ip_network(addr + slash + bits, strict=False)
    except ValueError as exc:
        raise ConfigError("%s: source %r is not an IPv4/IPv6 address or CIDR: %s"
                          % (where, text, exc)) from None


def parse_sources(value, where):
    if value is None:
        return None
    if isinstance(value, str):
        items = [v for v in value.replace(" ", ",").split(",") if v]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        raise ConfigError("%s: source must be a str of CIDRs or a list of them" % where)
    nets = []
    for v in items:
        if not isinstance(v, str):
            raise ConfigError("%s: source entries must be str, got %r" % (where, v))
        nets.append(parse_network(v, where))
    return tuple(nets)


def address_allowed(addr, networks):
    """True when the client address ``addr`` (str) is in one of ``networks``."""
    if not addr:
        return False
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    for net in networks:
        if ip.version == net.version and ip in net:
            return True
    return False


def _roles(roles, role, where):
    if roles is not None and role is not None:
        raise ConfigError("%s: give roles= or its alias role=, not both" % where)
    value = roles if roles is not None else role
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.replace(" ", ",").split(",") if v]
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(
            isinstance(v, str) and v for v in value):
        raise ConfigError("%s: roles must be a str or a list of non-empty str" % where)
    return tuple(value)


class Policy:
    __slots__ = ("auth", "roles", "source", "rate", "scope", "mode", "need")

    def __init__(self, auth=None, roles=None, source=None, rate=None, scope="app"):
        self.auth = auth
        self.roles = roles
        self.source = source
        self.rate = rate
        self.scope = scope           # names the rate-limit counter
        self.mode = None             # set by Registry.policy_for (see plan())
        self.need = frozenset()

    def plan(self):
        """What a request under this (effective) policy goes through:
        ``mode`` 0 nothing, 1 a bearer token and maybe roles only (a token
        the verifier already knows is admitted without the full path), 2
        the full path (source, rate limit); ``need``: the roles as a set."""
        if not self.active:
            self.mode = 0
        elif self.source is None and not (self.rate is not None and self.rate.limit):
            self.mode = 1
        else:
            self.mode = 2
        self.need = frozenset(self.roles or ())
        return self

    @classmethod
    def make(cls, where, auth=None, roles=None, role=None, source=None, rate_limit=None,
             scope="app"):
        if auth is not None and not isinstance(auth, bool):
            raise ConfigError("%s: auth must be True, False or None" % where)
        return cls(auth, _roles(roles, role, where), parse_sources(source, where),
                   parse_rate(rate_limit, where), scope)

    def over(self, base):
        """This policy's set fields over ``base``'s."""
        return Policy(base.auth if self.auth is None else self.auth,
                      base.roles if self.roles is None else self.roles,
                      base.source if self.source is None else self.source,
                      base.rate if self.rate is None else self.rate,
                      base.scope if self.rate is None else self.scope)

    @property
    def active(self):
        return bool(self.auth or self.source is not None
                    or (self.rate is not None and self.rate.limit))

    def __repr__(self):
        return "<gateway policy auth=%s roles=%s source=%s rate=%s>" % (
            self.auth, self.roles, self.source, self.rate)


class Entry:
    __slots__ = ("target", "domain", "policy", "where", "used")

    def __init__(self, target, domain, policy, where):
        self.target = target
        self.domain = domain
        self.policy = policy
        self.where = where
        self.used = False


def _norm_prefix(p):
    return p.rstrip("/")


class Registry:
    def __init__(self):
        self.entries = []
        self._cache = {}

    def add(self, target, domain, policy, where):
        if target is not None and target != "*" and not callable(target) and not (
                isinstance(target, str) and target):
            raise ConfigError("%s: target must be a route path, a mount prefix, a "
                              "handler, '*' or None with domain=" % where)
        if target is None and domain is None:
            raise ConfigError("%s: give a target (path, handler, '*') or domain=" % where)
        if domain is not None and not isinstance(domain, str):
            raise ConfigError("%s: domain must be a host name (str)" % where)
        self.entries.append(Entry(target, domain, policy, where))

    def all_policies(self):
        return [e.policy for e in self.entries]

    @staticmethod
    def _matches(entry, target, domain):
        if entry.domain is not None and (domain is None or domain.host != entry.domain):
            return False
        t = entry.target
        if t is None or t == "*":
            return True
        if callable(t):
            cb = getattr(target, "callback", None)
            return cb is t or getattr(cb, "__func__", None) is t or \
                getattr(target, "app", None) is t
        if hasattr(target, "prefix") and not hasattr(target, "rx"):
            return _norm_prefix(t) == _norm_prefix(target.prefix)
        return getattr(target, "path", None) == t

    def policy_for(self, target, domain, app_policy):
        """The effective policy of ``target`` (a route or a mount) on
        ``domain``; computed once per target."""
        key = id(target)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is target and hit[1] is domain:
            return hit[2]
        pol = app_policy
        for wide in (True, False):
            for e in self.entries:
                is_wide = e.target is None or e.target == "*"
                if is_wide == wide and self._matches(e, target, domain):
                    if not wide:
                        e.used = True
                    pol = e.policy.over(pol)
        attrs = _mount_attributes(target)
        if attrs is not None:
            pol = attrs.over(pol)
        if pol is app_policy:
            pol = pol.over(Policy())        # a copy: plan() writes to it
        self._cache[key] = (target, domain, pol.plan())
        return pol

    def check_targets(self, domains):
        """At load: every path/handler entry names something that exists."""
        for e in self.entries:
            if e.target is None or e.target == "*":
                if e.domain is not None and not any(d.host == e.domain for d in domains):
                    raise ConfigError("%s: domain '%s' does not exist (known: %s)" % (
                        e.where, e.domain, ", ".join(d.host for d in domains) or "none"))
                continue
            found = False
            for d in domains:
                for t in list(d.routes) + list(d.mounts):
                    if self._matches(e, t, d):
                        found = True
                        break
                if found:
                    break
            if not found:
                raise ConfigError("%s: no route or mount matches %r%s" % (
                    e.where, getattr(e.target, "__name__", e.target),
                    " on domain '%s'" % e.domain if e.domain else ""))


def _mount_attributes(target):
    """Skitai's alias(..., role=, source=) on a mount object."""
    if not hasattr(target, "prefix"):
        return None
    roles = getattr(target, "roles", None)
    role = getattr(target, "role", None)
    source = getattr(target, "source", None)
    if roles is None and role is None and source is None:
        return None
    where = "mount %s" % (getattr(target, "prefix", "") or "/")
    p = Policy.make(where, roles=roles if roles is not None else None,
                    role=role if roles is None else None, source=source)
    if p.roles is not None:
        p.auth = True
    return p


REGISTRY = Registry()


def reset():
    global REGISTRY
    REGISTRY = Registry()
    return REGISTRY


def _where(target, domain, name="gateway_policy"):
    what = getattr(target, "__name__", target)
    return "kore.%s(%r%s)" % (name, what, ", domain=%r" % domain if domain else "")


def gateway_policy(target=None, *, domain=None, auth=None, roles=None, role=None,
                   source=None, rate_limit=None):
    """kore.gateway_policy(target, domain=, auth=, roles=/role=, source=,
    rate_limit=): the policy of a route, a mount, a domain or the app."""
    where = _where(target, domain)
    scope = "%s@%s" % (getattr(target, "__qualname__", target), domain or "*")
    pol = Policy.make(where, auth=auth, roles=roles, role=role, source=source,
                      rate_limit=rate_limit, scope=scope)
    if pol.roles is not None and auth is None:
        pol.auth = True
    REGISTRY.add(target, domain, pol, where)
    return None


def gateway_auth(*, auth=True, roles=None, role=None, source=None, rate_limit=None,
                 domain=None):
    """@kore.gateway_auth(roles=[...], source=..., rate_limit=...) on a handler."""
    def deco(fn):
        if not callable(fn):
            raise ConfigError("@kore.gateway_auth decorates a handler function")
        gateway_policy(fn, domain=domain, auth=auth, roles=roles, role=role,
                       source=source, rate_limit=rate_limit)
        return fn
    return deco
