"""Where request body bytes go: a route's on_body_chunk hook, memory or a
file under ``http_body_disk_path`` (``http_body_disk_offload``).

Transports feed a ``BodySink`` with ``write(data)`` as bytes arrive and
call ``done()`` at the end; the sink fills ``req._body`` / ``req.body_path``.
Nothing here knows the protocol.
"""

import os
import sys
from types import CoroutineType
import tempfile

from kore.aio import drive
from kore.trace import report

from .parser import HttpError
from .settings import SETTINGS as S


class BodySink:
    __slots__ = ("req", "hook", "parts", "size", "file")

    def __init__(self, req, hook=None):
        self.req = req
        self.hook = hook
        self.parts = []
        self.size = 0
        self.file = None

    def write(self, data):
        if not data:
            return
        self.size += len(data)
        hook = self.hook
        if hook is not None:
            try:
                ok = hook(self.req, data)
                if type(ok) is CoroutineType:
                    ok = drive(ok)
            except Exception:
                report(sys.exc_info(), where="on_body_chunk hook", req=self.req)
                ok = False
            if ok is not True:
                raise HttpError(500, "on_body_chunk refused the body")
            return
        if self.file is not None:
            self.file.write(data)
            return
        self.parts.append(data)
        if S.disk_offload and self.size > S.disk_offload:
            self._offload()

    def _offload(self):
        path = S.disk_path
        os.makedirs(path, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="http_body.", dir=path)
        f = os.fdopen(fd, "w+b")
        for p in self.parts:
            f.write(p)
        self.parts = []
        self.file = f
        self.req.body_path = os.path.abspath(name)
        self.req._body_file = f

    def done(self):
        req = self.req
        if self.hook is not None:
            req._body_hooked = True
        elif self.file is not None:
            self.file.flush()
        elif len(self.parts) == 1:
            req._body = self.parts[0]
        elif self.parts:
            req._body = b"".join(self.parts)


def close_body_file(req):
    """Close and remove an offloaded body and the uploaded files of a
    multipart form (after the response)."""
    parts = req._all_files
    if parts:
        req._all_files = None
        for part in parts:
            part.close()
    f = req._body_file
    if f is None:
        return
    try:
        f.close()
    except OSError:
        pass
    if req.body_path:
        try:
            os.unlink(req.body_path)
        except OSError:
            pass
