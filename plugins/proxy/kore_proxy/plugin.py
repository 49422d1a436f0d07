"""kore-plugin-proxy: the hooks that plug the proxy into the kernel and the
http plugin (``kore.alias``, ``kore.mount('/p', '@name')``)."""

import time

from kore import hookimpl
from kore_http import declare as _http_declare

from . import alias as _alias
from . import cache as _cache
from . import forward as _forward
from . import static as _static
from .health import CHECKER
from .members import PROTO_HTTP, PROTO_HTTPS, PROTO_WS, PROTO_WSS, parse_target
from .mount import ProxyMount


def _mount_factory(prefix, target):
    """kore.mount(prefix, '@name[/base]') -> a ProxyMount (None otherwise)."""
    parsed = parse_target(target)
    if parsed is None:
        return None
    name, base = parsed
    return ProxyMount(prefix, name, base)


_http_declare.register_mount_factory(_mount_factory)


_PM = [None]


@hookimpl
def kore_add_hookspecs(pm):
    _PM[0] = pm       # to register the forward proxy's hooks when enabled


@hookimpl
def kore_namespace():
    return {
        "alias": _alias.alias,
        "enable_cachefs": _cache.enable_cachefs,
        "set_max_age": _static.set_max_age,
        "enable_forward": _static.enable_forward,
        "enable_proxy": _forward.enable_proxy,
        "PROTO_HTTP": PROTO_HTTP,
        "PROTO_HTTPS": PROTO_HTTPS,
        "PROTO_WS": PROTO_WS,
        "PROTO_WSS": PROTO_WSS,
    }


@hookimpl
def kore_httpclient_target(url, options):
    from .lbclient import AliasClient
    return AliasClient(url, options.get("timeout"))


@hookimpl
def kore_app_reset():
    _alias.reset()
    _cache.reset()
    _static.reset()
    _forward.reset(_PM[0])


def order_mounts(domain):
    """Skitai's longest-prefix rule: the WSGI and proxy mounts of a domain
    with a proxy mount are tried longest prefix first (filemaps and other
    mounts keep their places)."""
    ms = domain.mounts
    if not any(isinstance(m, ProxyMount) for m in ms):
        return
    from kore_http.wsgi import WsgiMount
    slots = [i for i, m in enumerate(ms) if isinstance(m, (ProxyMount, WsgiMount))]
    ordered = sorted((ms[i] for i in slots), key=lambda m: -len(m.prefix))
    for i, m in zip(slots, ordered):
        ms[i] = m


@hookimpl(trylast=True)
def kore_app_loaded(app):
    for d in _http_declare.state.domains:
        seen = set()
        for m in d.mounts:
            if isinstance(m, ProxyMount):
                m.resolve()
                if m.prefix in seen:
                    from kore.config import ConfigError
                    raise ConfigError("duplicate proxy mount %s on domain %s"
                                      % (m.prefix or "/", d.host))
                seen.add(m.prefix)
        order_mounts(d)
    _static.wrap_filemaps(_http_declare.state.domains)
    _static.install_forwards(_http_declare)
    if _PM[0] is not None:
        _forward.register(_PM[0])


@hookimpl
def kore_worker_serve(worker):
    CHECKER.start(list(_alias.ALIASES.values()))


@hookimpl
def kore_worker_shutdown(worker):
    CHECKER.stop()
    if _cache.SETTINGS.cache is not None:
        _cache.SETTINGS.cache.close()
    for a in _alias.ALIASES.values():
        for node in a.nodes:
            for up in node.idle:
                up.close()
            node.idle = []


@hookimpl
def kore_metrics_collect(samples):
    # kore-plugin-metrics: each alias's upstream servers as this worker sees
    # them (a gauge summed over the workers: the number of workers that send
    # to it), requests in flight and sent (counters cumulative per worker)
    aliases = list(_alias.ALIASES.values())
    if not aliases:
        return
    samples.family("kore_proxy_upstream_healthy", "gauge", "workers that send to "
                   "this upstream server (not taken out by health checks or failures)")
    samples.family("kore_proxy_upstream_active_requests", "gauge",
                   "requests in flight to this upstream server")
    samples.family("kore_proxy_upstream_requests_total", "counter",
                   "requests sent to this upstream server")
    now = time.monotonic()
    for a in aliases:
        single = len(a.nodes) == 1      # never taken out passively
        for node in a.nodes:
            lab = (("alias", "@" + a.name), ("upstream", node.name))
            up = not node.checked_down if single else node.available(now)
            samples.set("kore_proxy_upstream_healthy", lab, 1 if up else 0)
            samples.set("kore_proxy_upstream_active_requests", lab, node.conns)
            samples.set("kore_proxy_upstream_requests_total", lab, node.requests)
