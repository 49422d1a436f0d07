"""The HTTP/2 options (gunicorn 27's flag names) and their per-worker values.

``kore.config.http_protocols`` / ``--http-protocols`` / ``KORE_HTTP_PROTOCOLS``
and the ``http2_*`` options below; ``SETTINGS2`` is what the connection code
reads, loaded once per worker (``load()``).
"""

from kore import runtime
from kore.config import ConfigError, Option

OWNER = "kore-plugin-http2"
PROTOCOLS = ("h1", "h2")
MAX_WINDOW = 2 ** 31 - 1


def options():
    def o(*a, **kw):
        kw.setdefault("owner", OWNER)
        return Option(*a, **kw)

    return [
        o("http_protocols", "list", ["h2", "h1"], "protocols served: h2 (HTTP/2 "
          "over TLS by ALPN, and h2c when http2_cleartext allows it) and h1 "
          "(HTTP/1.1, always served)", flags=("--http-protocols",)),
        o("http2_cleartext", "choice", "off", "h2c (HTTP/2 without TLS): off, or "
          "prior-knowledge from peers in http_forwarded_allow_ips only "
          "(Upgrade: h2c is never honoured)", choices=("off", "prior-knowledge"),
          flags=("--http2-cleartext",)),
        o("http2_max_concurrent_streams", "int", 100, "streams a client may have "
          "open on one connection (SETTINGS_MAX_CONCURRENT_STREAMS; more are "
          "refused with REFUSED_STREAM)", minimum=1, maximum=MAX_WINDOW,
          flags=("--http2-max-concurrent-streams",)),
        o("http2_initial_window_size", "int", 65535, "the receive window of each "
          "stream in bytes (SETTINGS_INITIAL_WINDOW_SIZE); the connection window "
          "is raised to at least this", minimum=1, maximum=MAX_WINDOW,
          flags=("--http2-initial-window-size",)),
        o("http2_max_frame_size", "int", 16384, "largest frame payload accepted "
          "(SETTINGS_MAX_FRAME_SIZE)", minimum=16384, maximum=16777215,
          flags=("--http2-max-frame-size",)),
        o("http2_max_header_list_size", "int", 65536, "largest header list "
          "accepted (SETTINGS_MAX_HEADER_LIST_SIZE; larger blocks end the "
          "connection); requests above http_header_max get 431", minimum=1024,
          flags=("--http2-max-header-list-size",)),
        o("http2_ping_interval", "int", 30, "seconds without a frame from a "
          "client with open streams before a PING is sent (0: never)", minimum=0,
          flags=("--http2-ping-interval",)),
        o("http2_ping_timeout", "int", 20, "seconds a PING may go unanswered "
          "before the connection is closed", minimum=1,
          flags=("--http2-ping-timeout",)),
        o("http2_max_resets", "int", 200, "streams a client may reset within 10 "
          "seconds before the connection ends with GOAWAY(ENHANCE_YOUR_CALM) "
          "(Rapid Reset, CVE-2023-44487)", minimum=1,
          flags=("--http2-max-resets",)),
    ]


def check():
    """Stop start-up on an unknown --http-protocols entry."""
    protos = runtime.option("http_protocols")
    bad = [p for p in protos if p not in PROTOCOLS]
    if bad:
        raise ConfigError("bad value %r for option 'http_protocols': each entry must be "
                          "h2 or h1 (e.g. --http-protocols h2,h1)" % ",".join(protos))


class Settings2:
    __slots__ = ("enabled", "cleartext", "max_streams", "window", "frame_size",
                 "header_list", "ping_interval", "ping_timeout", "max_resets")

    def __init__(self):
        self.enabled = True
        self.cleartext = False
        self.max_streams = 100
        self.window = 65535
        self.frame_size = 16384
        self.header_list = 65536
        self.ping_interval = 30.0
        self.ping_timeout = 20.0
        self.max_resets = 200

    def load(self):
        get = runtime.option
        self.enabled = "h2" in get("http_protocols")
        self.cleartext = self.enabled and get("http2_cleartext") == "prior-knowledge"
        self.max_streams = get("http2_max_concurrent_streams")
        self.window = get("http2_initial_window_size")
        self.frame_size = get("http2_max_frame_size")
        self.header_list = get("http2_max_header_list_size")
        self.ping_interval = float(get("http2_ping_interval"))
        self.ping_timeout = float(get("http2_ping_timeout"))
        self.max_resets = get("http2_max_resets")


SETTINGS2 = Settings2()
