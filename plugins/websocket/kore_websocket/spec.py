"""The ``backplane`` option: a driver name or a URL.

``local``
    the workers of one server, through the master (the default);
``redis://[:password@]host:port/db``, ``rediss://...`` (TLS)
    the ``redis`` driver (pub/sub);
``redis-streams+redis://host:port/db`` (or ``+rediss://``)
    the ``redis-streams`` driver (resumable);
``NAME+URL`` or ``NAME://...``
    any installed driver: the part before ``+``, else the URL's scheme,
    names it (``nats://...`` finds a driver registered as ``nats``).
"""

from kore import ConfigError

SCHEME_ALIASES = {"rediss": "redis"}


def parse(spec):
    """(driver name, URL or None) for the option's value."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("option 'backplane' is empty: use 'local' or a URL such as "
                          "redis://127.0.0.1:6379/0")
    spec = spec.strip()
    if "://" not in spec:
        return spec, None
    scheme, rest = spec.split("://", 1)
    if "+" in scheme:
        name, scheme = scheme.split("+", 1)
    else:
        name = SCHEME_ALIASES.get(scheme, scheme)
    if not name or not scheme:
        raise ConfigError("bad value %r for option 'backplane': expected a driver name or "
                          "a URL such as redis://127.0.0.1:6379/0" % spec)
    return name, scheme + "://" + rest
