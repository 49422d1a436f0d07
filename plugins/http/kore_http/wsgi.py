"""Mounting WSGI applications: ``kore.mount("/flask", app)``.

The WSGI app runs in the connection's greenlet (gevent makes its blocking
calls cooperative).  ``SCRIPT_NAME`` is the mount prefix and ``PATH_INFO``
the rest of the (percent-decoded, latin-1 per PEP 3333) path.  A response
with a Content-Length is sent as is; otherwise it is sent chunked (or
close-delimited to HTTP/1.0 clients).
"""

import io
import sys
from urllib.parse import unquote_to_bytes

from kore.log import LOG, LOG_ERR

from .mounts import Mount


class WsgiMount(Mount):
    """``kore.mount(prefix, wsgi_app)``."""

    def __init__(self, prefix, app):
        self.prefix = prefix
        self.app = app
        self.where = "mount %s" % (prefix or "/")

    def environ(self, req):
        c = req.stream
        path = req.path
        rest = path[len(self.prefix):]
        host = req.host
        if self.prefix and not rest:
            rest = ""
        srv_addr = c.listener.address
        if srv_addr[0] == "tcp":
            server_name, server_port = srv_addr[1], str(srv_addr[2])
        else:
            server_name, server_port = "localhost", "0"
        if host:
            h = host
            if h.startswith("["):
                server_name = h[:h.find("]") + 1]
            else:
                server_name = h.rpartition(":")[0] if ":" in h else h
        env = {
            "REQUEST_METHOD": req._meth,
            "SCRIPT_NAME": self.prefix,
            "PATH_INFO": unquote_to_bytes(rest).decode("latin-1"),
            "QUERY_STRING": req.query,
            "SERVER_NAME": server_name,
            "SERVER_PORT": server_port,
            "SERVER_PROTOCOL": "HTTP/" + c.http_version,
            "REMOTE_ADDR": c.remote_address(),
            "RAW_URI": req.target,
            "REQUEST_URI": req.target,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": req.protocol,
            "wsgi.input": io.BytesIO(req.body) if not req._body_hooked else io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "kore.request": req,
        }
        body_len = len(req._body) if req._body_file is None else None
        for name, value in req.headers_list():
            if name == "content-type":
                env["CONTENT_TYPE"] = value
            elif name == "content-length":
                env["CONTENT_LENGTH"] = value
            else:
                key = "HTTP_" + name.upper().replace("-", "_")
                if key in env:
                    env[key] += "," + value
                else:
                    env[key] = value
        if "CONTENT_LENGTH" not in env and body_len:
            env["CONTENT_LENGTH"] = str(body_len)
        return env

    def serve(self, req):
        env = self.environ(req)
        state = {}

        def start_response(status, headers, exc_info=None):
            if exc_info:
                try:
                    if req._sent:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif "status" in state:
                raise AssertionError("start_response called twice")
            state["status"] = status
            state["headers"] = headers
            return write

        def write(data):
            if not req._sent:
                _apply(req, state)
            req.write(data)

        result = self.app(env, start_response)
        try:
            if "status" not in state:
                # the app must call start_response before returning data
                first = None
                for first in result:
                    break
                if "status" not in state:
                    raise RuntimeError("WSGI app did not call start_response")
                chunks = [first] if first else []
            else:
                chunks = None
            if req._sent:
                for data in (chunks or ()):
                    req.write(data)
                for data in result:
                    if data:
                        req.write(data)
                req.end()
                return
            has_cl = any(n.lower() == "content-length" for n, _ in state["headers"])
            if isinstance(result, (list, tuple)) and chunks is None:
                _apply(req, state)
                body = b"".join(result)
                if has_cl:
                    _drop_cl(req)
                req.end(body)
                return
            _apply(req, state)
            it = iter(result)
            if chunks:
                import itertools
                it = itertools.chain(chunks, it)
            if not has_cl:
                # collect a small response, stream a long one
                parts = []
                for data in it:
                    if data:
                        parts.append(data)
                        if len(parts) > 1:
                            break
                else:
                    req.end(b"".join(parts))
                    return
                for data in parts:
                    req.write(data)
                for data in it:
                    if data:
                        req.write(data)
                req.end()
                return
            req.response(_status(state), it)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    LOG.write(LOG_ERR, "WSGI result close() raised")


def _status(state):
    return state["status"].encode("latin-1")


def _apply(req, state):
    req.write_status(state["status"])
    for name, value in state["headers"]:
        req.write_header(name, value)


def _drop_cl(req):
    rh = req._rheaders
    if rh:
        req._rheaders = [h for h in rh if h[0].lower() != "content-length"]
