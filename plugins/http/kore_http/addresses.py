"""Listening addresses: gunicorn's bind syntax, and how logs show them."""

from kore.config import ConfigError


def parse_bind(spec):
    """gunicorn's bind syntax: HOST:PORT, [v6]:PORT, :PORT, PORT, unix:/path."""
    s = spec.strip()
    if s.startswith("unix:"):
        path = s[5:]
        if not path:
            raise ConfigError("bad bind address %r: empty unix socket path" % spec)
        return ("unix", path)
    if s.startswith("fd://"):
        raise ConfigError("bad bind address %r: fd:// is not supported" % spec)
    if s.startswith("["):
        host, sep, port = s[1:].partition("]")
        if not sep or (port and not port.startswith(":")):
            raise ConfigError("bad bind address %r" % spec)
        port = port[1:] or "8000"
    elif ":" in s:
        host, _, port = s.rpartition(":")
        if ":" in host:
            raise ConfigError("bad bind address %r: write IPv6 as [addr]:port" % spec)
        host = host or "0.0.0.0"
    elif s.isdigit():
        host, port = "0.0.0.0", s
    else:
        host, port = s, "8000"
    try:
        p = int(port)
        if not 0 <= p <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigError("bad bind address %r: bad port %r" % (spec, port)) from None
    return ("tcp", host, p)


def format_address(addr):
    """("tcp", host, port) -> "host:port" ("[v6]:port"); ("unix", p) -> "unix:p"."""
    if addr[0] == "unix":
        return "unix:%s" % addr[1]
    host = addr[1]
    if ":" in host:
        host = "[%s]" % host
    return "%s:%d" % (host, addr[2])
