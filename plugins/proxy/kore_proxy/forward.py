"""``kore.enable_proxy()``: a forward proxy for clients in an allow-list.

Absolute-form requests (``GET http://host/path``) are fetched from
``host`` and ``CONNECT host:port`` opens a tunnel, only for clients whose
address is in ``allow`` (default loopback) and, for CONNECT, only to
``connect_ports`` (default 443); anything else is answered 403.  Skitai's
proxy was open to every client and every port.

It runs in the ``kore_request_start`` hook (before routing), registered
only when the application called ``kore.enable_proxy`` so that other
applications pay nothing for it.
"""

import ipaddress

from kore import hookimpl
from kore.config import ConfigError
from kore.log import LOG, LOG_WARNING
from kore_http.stream import ClientGone

from .alias import Alias
from .members import PROTO_HTTP


class Settings:
    def __init__(self, allow, connect_ports, connect_timeout, read_timeout):
        self.allow = allow
        self.connect_ports = connect_ports
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    def allowed(self, addr):
        try:
            ip = ipaddress.ip_address(addr.split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.allow)


class _State:
    settings = None
    registered = False


STATE = _State()


def enable_proxy(allow=("127.0.0.0/8", "::1"), connect_ports=(443,), connect_timeout=10,
                 read_timeout=60):
    """kore.enable_proxy(allow=, connect_ports=): see the module docstring."""
    if isinstance(allow, str):
        allow = [allow]
    nets = []
    for a in allow:
        try:
            nets.append(ipaddress.ip_network(str(a), strict=False))
        except ValueError:
            raise ConfigError("kore.enable_proxy: allow=%r: not an address or network"
                              % (a,)) from None
    ports = []
    for p in connect_ports:
        if isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 65536:
            raise ConfigError("kore.enable_proxy: connect_ports: bad port %r" % (p,))
        ports.append(p)
    STATE.settings = Settings(nets, frozenset(ports), connect_timeout, read_timeout)
    return None


class _Target:
    """What forward() needs of a mount: the target sent upstream."""

    prefix = ""

    def __init__(self, target):
        self.target = target

    def upstream_target(self, req, member):
        return self.target


def _split_host(host, default):
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[1:end], host[end + 1:]
        port = rest[1:] if rest.startswith(":") else default
    elif host.count(":") == 1:
        name, port = host.split(":")
    else:
        name, port = host, default
    return name, int(port)


class ForwardHooks:
    """The hook implementations registered by ``register``."""

    @hookimpl
    def kore_request_start(self, req):
        st = STATE.settings
        connect = req._meth == "CONNECT"
        if st is None or (not connect and req.absolute_target is None):
            return None
        addr = req.stream.remote_address()
        if not st.allowed(addr):
            LOG.write(LOG_WARNING, "forward proxy: %s %s from %s refused (not in allow)"
                      % (req._meth, req.absolute_target or req.target, addr))
            return 403
        if connect:
            return _connect(req, st)
        if not req.absolute_target.startswith("http://"):
            return 403        # https:// absolute URIs: use CONNECT
        try:
            host, port = _split_host(req.host, 80)
        except (ValueError, IndexError):
            return 400
        from .mount import forward
        member = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
        a = Alias("forward", PROTO_HTTP, [member], keepalive=0,
                  connect_timeout=st.connect_timeout, read_timeout=st.read_timeout)
        forward(_Target(req.target), a, req)
        return req._status


def _connect(req, st):
    from .client import ConnectFailed, connect
    from .balancer import Node
    from .members import parse_member
    from .tunnel import pipe
    try:
        host, port = _split_host(req.target, 443)
    except (ValueError, IndexError):
        return 400
    if port not in st.connect_ports:
        LOG.write(LOG_WARNING, "forward proxy: CONNECT %s refused (port not in "
                  "connect_ports)" % req.target)
        return 403
    node = Node(parse_member(req.target, True, "CONNECT"))
    try:
        up = connect(node, st.connect_timeout, None)
    except ConnectFailed as exc:
        LOG.write(LOG_WARNING, "forward proxy: CONNECT %s: %s" % (req.target, exc))
        return 502
    usock = up.sock

    def tunnel(csock, buffered):
        try:
            pipe(csock, usock, first_b=buffered)
        finally:
            try:
                usock.close()
            except OSError:
                pass
    try:
        req.upgrade(tunnel, 200, [])
    except NotImplementedError:
        usock.close()
        return 501
    except OSError:
        usock.close()
        raise ClientGone() from None
    return 200


HOOKS = ForwardHooks()


def register(pm):
    """Register the hooks (application load, when enable_proxy was called)."""
    if STATE.settings is not None and not STATE.registered:
        pm.register(HOOKS, name="kore_proxy.forward")
        STATE.registered = True


def reset(pm):
    STATE.settings = None
    if STATE.registered and pm is not None:
        pm.unregister(HOOKS)
        STATE.registered = False
