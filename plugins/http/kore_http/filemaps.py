"""Static files (Kore's filemaps): ``domain.filemaps({"/static": "webroot"})``.

GET and HEAD only (405 otherwise); the URL path is percent-decoded and
normalised, and the resolved file (symlinks followed) must stay inside the
root, else 404.  A directory without a trailing slash redirects to the
slash form; a directory serves ``filemap_index`` if set, else 404.
Last-Modified / ETag with If-Modified-Since / If-None-Match (304), a single
``Range`` (206 / 416), content types from the extension (``http_media_type``
first, then the mimetypes table).
"""

import mimetypes
import os
import posixpath
import stat
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import unquote

from kore import runtime

from .mounts import Mount

_media = None


def media_types():
    global _media
    if _media is None:
        _media = {}
        for spec in runtime.option("http_media_type"):
            parts = spec.split()
            if len(parts) >= 2:
                for ext in parts[1:]:
                    _media[ext.lower().lstrip(".")] = parts[0]
    return _media


def content_type(path):
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    t = media_types().get(ext)
    if t is not None:
        return t
    t, enc = mimetypes.guess_type("x." + ext) if ext else (None, None)
    if t is None:
        return "application/octet-stream"
    if t.startswith("text/") or t in ("application/javascript", "application/json",
                                      "image/svg+xml"):
        t += "; charset=utf-8"
    return t


class FileMap(Mount):
    """A filemap: files under ``root`` served at ``url``."""

    def __init__(self, domain, url, root, auth):
        self.domain = domain
        self.url = url.rstrip("/") or "/"
        self.prefix = "" if self.url == "/" else self.url
        self.root = root
        self.auth = auth
        self._realroot = None
        self.where = "filemap %s" % url

    def match(self, path):
        p = self.prefix
        return path == p or path.startswith(p + "/") or (not p and path.startswith("/"))

    def realroot(self):
        r = self._realroot
        if r is None:
            r = self._realroot = os.path.realpath(self.root)
        return r

    def serve(self, req):
        if req._meth not in ("GET", "HEAD"):
            req.response_header("Allow", "GET, HEAD")
            req.response(405, None)
            return
        rel = req.path[len(self.prefix):]
        try:
            rel = unquote(rel, errors="strict")
        except UnicodeDecodeError:
            req.response(404, None)
            return
        if "\x00" in rel or "\\" in rel:
            req.response(404, None)
            return
        segs = rel.split("/")
        if any(s in ("..", ".") for s in segs):
            req.response(404, None)
            return
        root = self.realroot()
        norm = posixpath.normpath("/" + rel).lstrip("/")
        full = os.path.realpath(os.path.join(root, norm)) if norm else root
        if full != root and not full.startswith(root + os.sep):
            req.response(404, None)
            return
        if not os.path.exists(full):
            ext = runtime.option("filemap_ext")
            if ext and os.path.isfile(full + ext):
                full = full + ext
            else:
                req.response(404, None)
                return
        try:
            st = os.stat(full)
        except OSError:
            req.response(404, None)
            return
        if stat.S_ISDIR(st.st_mode):
            if not req.path.endswith("/"):
                loc = req.path + "/"
                if req.query:
                    loc += "?" + req.query
                req.response_header("Location", loc)
                req.response(302, None)
                return
            index = runtime.option("filemap_index")
            if not index:
                req.response(404, None)
                return
            full = os.path.join(full, index)
            try:
                st = os.stat(full)
            except OSError:
                req.response(404, None)
                return
            if not stat.S_ISREG(st.st_mode):
                req.response(404, None)
                return
        elif not stat.S_ISREG(st.st_mode):
            req.response(404, None)
            return
        self._send(req, full, st)

    def _send(self, req, full, st):
        size = st.st_size
        mtime = int(st.st_mtime)
        etag = '"%x-%x"' % (int(st.st_mtime_ns // 1000), size)
        lastmod = formatdate(mtime, usegmt=True)
        req.response_header("Last-Modified", lastmod)
        req.response_header("ETag", etag)
        req.response_header("Accept-Ranges", "bytes")
        inm = req.request_header("if-none-match")
        if inm is not None:
            tags = [t.strip() for t in inm.split(",")]
            if "*" in tags or etag in tags or ("W/" + etag) in tags:
                req.response(304, None)
                return
        else:
            ims = req.request_header("if-modified-since")
            if ims:
                try:
                    when = parsedate_to_datetime(ims).timestamp()
                except (TypeError, ValueError, IndexError, OverflowError):
                    when = None
                if when is not None and mtime <= when:
                    req.response(304, None)
                    return
        req.response_header("Content-Type", content_type(full))
        start, end = 0, size - 1
        status = 200
        rng = req.request_header("range")
        if rng is not None and size > 0:
            ifr = req.request_header("if-range")
            if ifr is None or ifr.strip() in (etag, lastmod):
                r = _parse_range(rng, size)
                if r == "unsatisfiable":
                    req.response_header("Content-Range", "bytes */%d" % size)
                    req.response(416, None)
                    return
                if r is not None:
                    start, end = r
                    status = 206
                    req.response_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        count = end - start + 1 if size else 0
        if req._meth == "HEAD" or count <= 262144:
            data = b""
            if req._meth != "HEAD" and count:
                with open(full, "rb") as f:
                    f.seek(start)
                    data = f.read(count)
            if req._meth == "HEAD":
                req.response_header("Content-Length", str(count))
            req.response(status, data)
            return
        req.response_header("Content-Length", str(count))
        req.response(status, _file_iter(full, start, count))


def _file_iter(path, start, count):
    with open(path, "rb") as f:
        f.seek(start)
        while count > 0:
            chunk = f.read(min(count, 262144))
            if not chunk:
                break
            count -= len(chunk)
            yield chunk


def _parse_range(value, size):
    """(start, end) of a single byte range, None to ignore, "unsatisfiable"."""
    value = value.strip()
    if not value.startswith("bytes="):
        return None
    spec = value[6:].strip()
    if "," in spec:
        return None          # several ranges: send the whole file
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    first, last = first.strip(), last.strip()
    try:
        if first == "":
            if not last.isdigit():
                return None
            n = int(last)
            if n == 0:
                return "unsatisfiable"
            return max(0, size - n), size - 1
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        a = int(first)
        b = int(last) if last else size - 1
    except ValueError:
        return None
    if a >= size:
        return "unsatisfiable"
    if a > b:
        return None
    return a, min(b, size - 1)
