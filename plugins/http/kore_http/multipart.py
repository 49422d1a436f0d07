"""multipart/form-data request bodies (RFC 7578), parsed as a stream.

The framing (boundaries, part headers, part limits) is done by the
``multipart`` package's sans-I/O PushMultipartParser; this module feeds it
the body in pieces (from bytes, an iterable of bytes or a file object such
as an offloaded body file, never loading the body whole), keeps text
fields in memory within limits and writes file parts to files in a
directory (``http_body_disk_path``) once they are larger than a threshold.

The result has the shape Kore's request API needs: ``(fields, files)``,
fields ``[(name, str)]`` in body order and files ``[HttpFile]``
(kore.http_file: ``name``, ``filename``, ``content_type``, ``read(n)``).

Errors: FormError (a ValueError and an HttpError) with status 400 for a
malformed body and 413 for a body past a limit; NotMultipart (a ValueError)
when the request does not carry multipart/form-data at all.
"""

import os
import re
import tempfile
from io import BytesIO
from urllib.parse import unquote

import multipart as _mp

from .parser import HttpError

READ_SIZE = 65536
BOUNDARY_MAX = 200          # RFC 2046 says 70; longer ones were always accepted here

# limits (every one can be given to parse_form)
MAX_PARTS = 1000
MAX_PART_HEADER = 4096      # bytes of one part header line
MAX_PART_HEADERS = 8        # header lines of one part (RFC 7578 uses at most 3)
MAX_FIELD_SIZE = 1 << 20    # bytes of one text field, kept in memory
MAX_FIELDS_SIZE = 8 << 20   # bytes of all text fields together


class NotMultipart(ValueError):
    """The request's Content-Type is not multipart/*: nothing to parse."""


class FormError(HttpError, ValueError):
    """A multipart body refused: ``status`` 400 (malformed) or 413 (a limit
    was reached); ``reason`` says which."""

    def __init__(self, status, reason):
        HttpError.__init__(self, status, reason)

    def __str__(self):
        return self.reason


class HttpFile:
    """kore.http_file: an uploaded file part.

    ``name`` (the form field), ``filename`` (as sent: never trust it as a
    path), ``content_type``, ``size`` and ``path`` (the file holding the
    data in ``http_body_disk_path``, or None while it is in memory).
    ``read(n)`` is Kore's: ``(len, bytes)`` of at most n <= 1024 bytes, then
    ``(0, b'')``.  ``close()`` frees the data and removes the file; the
    server calls it when the request ends (it also runs when the object is
    garbage collected), so an application that wants to keep an upload
    moves or copies ``path`` (or reads the data) in its handler.
    """

    __slots__ = ("name", "filename", "content_type", "size", "path", "_f", "_offset")

    def __init__(self, name, filename, content_type, data=b""):
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.size = len(data)
        self.path = None
        self._f = BytesIO(data)
        self._offset = 0

    def read(self, length):
        """(len, bytes) of at most ``length`` (<= 1024) bytes; (0, b'') at the end."""
        if not isinstance(length, int) or length < 0:
            raise TypeError("length must be a non-negative int")
        if length > 1024:
            raise RuntimeError("length cannot exceed 1024")
        f = self._f
        if f is None:
            raise ValueError("read from a closed http_file")
        f.seek(self._offset)
        chunk = f.read(length)
        self._offset += len(chunk)
        return len(chunk), chunk

    @property
    def data(self):
        """The whole content as bytes (loads a file part into memory)."""
        f = self._f
        if f is None:
            raise ValueError("data of a closed http_file")
        f.seek(0)
        return f.read()

    def _write(self, chunk, memory_max, directory):
        f = self._f
        if self.path is None and memory_max is not None and \
                self.size + len(chunk) > memory_max:
            os.makedirs(directory, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix="http_upload.", dir=directory)
            disk = os.fdopen(fd, "w+b")
            self.path = os.path.abspath(path)
            disk.write(f.getvalue())
            self._f = f = disk
        f.write(chunk)
        self.size += len(chunk)

    def _finish(self):
        if self.path is not None:
            self._f.flush()

    def close(self):
        """Free the data and remove the file (idempotent)."""
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
        path, self.path = self.path, None
        if path is not None:
            try:
                os.unlink(path)
            except OSError:
                pass

    def __del__(self):
        try:
            self.close()
        except Exception:       # interpreter shutdown
            pass

    def __repr__(self):
        return "<kore.http_file %r filename=%r %d bytes>" % (self.name, self.filename,
                                                              self.size)


_PARAM_RE = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def header_params(value):
    """('multipart/form-data', {'boundary': ...}) from a header value
    (parameter names lower-cased, quoted values unquoted)."""
    main, _, rest = value.partition(";")
    params = {}
    for m in _PARAM_RE.finditer(";" + rest):
        v = m.group(2).strip()
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        params[m.group(1).lower()] = v
    return main.strip().lower(), params


def _text(value):
    """A header value decoded as latin-1 by the parser, re-read as UTF-8
    when it is UTF-8 (what browsers send, RFC 7578 section 5.1)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _disposition(value):
    """(name, filename) of a part's Content-Disposition (None when absent).

    Values are unquoted the way browsers quote them (HTML: %22, %0D, %0A)
    or the legacy way (backslash escapes); ``filename*`` (RFC 8187, sent by
    some non-browser clients although RFC 7578 section 4.2 says not to)
    wins over ``filename`` when it decodes.
    """
    dtype, _, rest = value.partition(";")
    if dtype.strip().lower() != "form-data":
        raise FormError(400, "part with a Content-Disposition other than form-data")
    params = {}
    for m in _PARAM_RE.finditer(";" + rest):
        params.setdefault(m.group(1).lower(), m.group(2).strip())
    name = params.get("name")
    if name is not None:
        name = _text(_mp.content_disposition_unquote(name))
    filename = params.get("filename")
    if filename is not None:
        filename = _text(_mp.content_disposition_unquote(filename, True))
    ext = params.get("filename*")
    if ext is not None:
        charset, q1, rest = ext.partition("'")
        _lang, q2, encoded = rest.partition("'")
        if q1 and q2:
            try:
                filename = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                pass
    return name, filename


def _chunks(source, read_size):
    if isinstance(source, (bytes, bytearray)):
        for i in range(0, len(source), read_size):
            yield source[i:i + read_size]
    elif hasattr(source, "read"):
        while True:
            chunk = source.read(read_size)
            if not chunk:
                return
            yield chunk
    else:
        for chunk in source:
            if chunk:
                yield bytes(chunk)


def boundary_of(content_type):
    """The boundary of a multipart Content-Type; NotMultipart or FormError."""
    ctype, params = header_params(content_type or "")
    if not ctype.startswith("multipart/"):
        raise NotMultipart("not a multipart body (Content-Type %r)" % (content_type,))
    boundary = params.get("boundary")
    if not boundary or len(boundary) > BOUNDARY_MAX or "\r" in boundary or "\n" in boundary:
        raise FormError(400, "multipart body without a valid boundary")
    return boundary


def parse_form(source, content_type, *, disk_path="tmp_files", file_memory_max=None,
               max_parts=MAX_PARTS, max_part_header=MAX_PART_HEADER,
               max_part_headers=MAX_PART_HEADERS, max_field_size=MAX_FIELD_SIZE,
               max_fields_size=MAX_FIELDS_SIZE, read_size=READ_SIZE):
    """``(fields, files)`` of a multipart/form-data body.

    ``source``: the body as bytes, an iterable of bytes, or a binary file
    object read from its current position in ``read_size`` pieces.
    ``content_type``: the request's Content-Type (with the boundary).
    File parts stay in memory up to ``file_memory_max`` bytes (None: always)
    and past that go to a file in ``disk_path``.  Parts without a ``name``
    are skipped; text fields are decoded as UTF-8 (bad bytes replaced).

    Raises NotMultipart, or FormError: 400 for a malformed body (no valid
    boundary, bad part headers, a part that is not form-data, bare LF line
    breaks, no final boundary), 413 when a limit is passed: more than
    ``max_parts`` parts, a part header line over ``max_part_header`` bytes
    or more than ``max_part_headers`` of them, a text field over
    ``max_field_size`` bytes, all text fields over ``max_fields_size``.
    Files already written are removed when an error is raised.
    """
    boundary = boundary_of(content_type)
    try:
        parser = _mp.PushMultipartParser(
            boundary, max_header_size=max_part_header, max_header_count=max_part_headers,
            max_segment_count=max_parts, header_charset="latin1")
    except _mp.MultipartError as exc:
        raise FormError(400, "multipart body without a valid boundary: %s" % exc) from None
    fields, files = [], []
    part = None             # the HttpFile being written, a list for a field, or None
    name = None
    fsize = total = 0
    try:
        for chunk in _chunks(source, read_size):
            for ev in parser.parse(chunk):
                if ev is None:
                    if type(part) is list:
                        fields.append((name, b"".join(part).decode("utf-8", "replace")))
                    elif part is not None:
                        part._finish()
                    part = None
                elif isinstance(ev, (bytes, bytearray)):
                    if type(part) is list:
                        fsize += len(ev)
                        total += len(ev)
                        if fsize > max_field_size:
                            raise FormError(413, "form field %r larger than %d bytes"
                                            % (name, max_field_size))
                        if total > max_fields_size:
                            raise FormError(413, "form fields larger than %d bytes in all"
                                            % max_fields_size)
                        part.append(bytes(ev))
                    elif part is not None:
                        part._write(ev, file_memory_max, disk_path)
                else:
                    part, name, fsize = _start_part(ev, files)
        parser.close()
    except _mp.ParserLimitReached as exc:
        _discard(files)
        raise FormError(413, "multipart body refused: %s" % exc) from None
    except _mp.MultipartError as exc:
        _discard(files)
        raise FormError(400, "malformed multipart body: %s" % exc) from None
    except BaseException:
        _discard(files)
        raise
    return fields, files


def _start_part(segment, files):
    """(sink, name, 0) for a new part: an HttpFile (appended to files), a
    list for a text field, or None for a part without a name."""
    cd = ctype = None
    for hname, value in segment.headerlist:
        h = hname.lower()
        if h == "content-disposition":
            cd = value
        elif h == "content-type":
            ctype = value.strip()
    if cd is None:
        raise FormError(400, "part without Content-Disposition")
    name, filename = _disposition(cd)
    if name is None:
        return None, None, 0
    if filename is not None:
        f = HttpFile(name, filename, ctype or "application/octet-stream")
        files.append(f)
        return f, name, 0
    return [], name, 0


def _discard(files):
    for f in files:
        f.close()
