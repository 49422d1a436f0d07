"""The http plugin's options, read once per worker into one object.

``SETTINGS`` is what the hot path reads (``S.body_max``): plain attributes
of one object, loaded by ``load()`` when a worker starts serving (and by the
in-process benchmark).  Which hooks have implementations is computed here
too, so an unimplemented hook costs nothing per request.
"""

from kore import runtime

from .hookcall import admitters, direct

from .status import HEADERS


class Settings:
    __slots__ = ("header_max", "header_timeout", "body_max", "body_timeout",
                 "keepalive_time", "request_limit", "request_budget",
                 "disk_offload", "disk_path", "hsts", "pretty_error",
                 "max_connections", "accept_threshold", "proxy_protocol",
                 "forwarded_allow", "accesslog", "hook_start", "hook_done", "done_call",
                 "hook_open", "hook_close", "hook_log_fields", "wrapped", "admit")

    def __init__(self):
        self.header_max = 4096
        self.header_timeout = 10.0
        self.body_max = 1024000
        self.body_timeout = 60.0
        self.keepalive_time = 20.0
        self.request_limit = 1000
        self.request_budget = 0.010
        self.disk_offload = 0
        self.disk_path = "tmp_files"
        self.hsts = 31536000
        self.pretty_error = False
        self.max_connections = 512
        self.accept_threshold = 16
        self.proxy_protocol = False
        self.forwarded_allow = ("127.0.0.1", "::1")
        self.accesslog = False
        self.hook_start = False      # kore_request_start implemented
        self.hook_done = False       # kore_request_done implemented
        self.done_call = None        # its direct caller (hookcall.direct)
        self.hook_open = False       # kore_connection_open implemented
        self.hook_close = False      # kore_connection_close implemented
        self.hook_log_fields = False  # kore_http_access_log_fields implemented
        self.wrapped = False         # a plugin wraps kore_http_handle
        self.admit = ()              # kore_http_admit: ((function, plugin name), ...)

    def load(self):
        get = runtime.option
        self.header_max = get("http_header_max")
        self.header_timeout = float(get("http_header_timeout"))
        self.body_max = get("http_body_max")
        self.body_timeout = float(get("http_body_timeout"))
        self.keepalive_time = float(get("http_keepalive_time"))
        self.request_limit = get("http_request_limit")
        self.request_budget = get("http_request_ms") / 1000.0
        self.disk_offload = get("http_body_disk_offload")
        self.disk_path = get("http_body_disk_path")
        self.hsts = get("http_hsts_enable")
        self.pretty_error = get("http_pretty_error")
        self.max_connections = get("worker_max_connections")
        self.accept_threshold = get("worker_accept_threshold")
        self.proxy_protocol = get("http_proxy_protocol")
        self.forwarded_allow = tuple(get("http_forwarded_allow_ips"))
        HEADERS.set_server(get("http_server_version"))
        HEADERS.refresh()
        impl = runtime.implemented
        self.hook_start = impl("kore_request_start")
        self.hook_done = impl("kore_request_done")
        # kore_request_done runs on every request: call plain implementations
        # directly (hookcall.direct), through notify only with a wrapper
        self.done_call = direct("kore_request_done", "kore_request_done hook") \
            if self.hook_done else None
        self.hook_open = impl("kore_connection_open")
        self.hook_close = impl("kore_connection_close")
        self.hook_log_fields = impl("kore_http_access_log_fields")
        self.admit = admitters() if impl("kore_http_admit") else ()
        pm = runtime.plugin_manager()
        self.wrapped = False
        if pm is not None:
            # the http plugin's own implementation runs the handler; any
            # other implementation is a wrapper around it
            self.wrapped = len(pm.hook.kore_http_handle.get_hookimpls()) > 1


SETTINGS = Settings()
