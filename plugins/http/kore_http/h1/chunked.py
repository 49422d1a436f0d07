"""The chunked transfer coding of request bodies (RFC 9112 section 7.1),
decoded without I/O.

The connection loop feeds the bytes it receives; the decoder returns the
chunk data found in them and, once the last chunk and the trailer section
have been read, sets ``done``, ``trailers`` and ``rest`` (the bytes after
the body: a pipelined request).  Chunk data is handed out as slices of the
fed bytes (the bytes object itself when a whole read is chunk data), so a
body sent in large chunks costs one slice per read and no copying into a
buffer; only an incomplete size line, chunk-data CRLF or trailer line is
kept between feeds.

What is rejected, with the same statuses the server always used:

* a chunk-size line longer than ``line_max`` (4096) bytes: 400;
* a chunk-size line not ending in CRLF (bare LF): 400 (bare LF is allowed
  in the request head only, RFC 9112 section 2.2);
* a chunk size that is not 1-15 hex digits, optionally followed by
  ``BWS ";" chunk-ext`` of VCHAR / obs-text / SP / HTAB (no CR, no NUL): 400;
* chunk data not followed by CRLF: 400;
* a body whose chunk sizes add up past ``body_max``: 413 (checked on the
  size line, before the data is read);
* a trailer line not ending in CRLF, without a colon, with a bare CR, or
  starting with SP/HTAB (obs-fold): 400;
* a trailer section (field lines, without the final empty line) larger
  than ``trailer_max``, or an incomplete trailer line larger than that: 431.

Chunk extensions are skipped.  Trailer fields are only validated as above
(the names are not checked as tokens) and are returned, never merged into
the request's header fields.
"""

import re

from ..parser import HttpError

CHUNK_LINE_MAX = 4096

_SIZE_RE = re.compile(rb"([0-9A-Fa-f]{1,15})(?:[ \t]*;[\t\x20-\x7e\x80-\xff]*)?\r\n")

# decoder states
_SIZE, _DATA, _CRLF, _TRAILER, _DONE = range(5)


class ChunkedDecoder:
    """Feed it the bytes after a chunked request head, read by read.

    ``feed(data)`` returns a list of non-empty bytes objects (the chunk data
    found so far, in order) and raises HttpError (status 400, 413 or 431)
    for a malformed or too large body; after the error the decoder must not
    be used again.  When the body is complete, ``done`` is True,
    ``trailers`` is the list of trailer fields ``[(lower-case name,
    value)]`` (str, latin-1, value stripped of SP/HTAB) and ``rest`` holds
    the bytes fed after the body.  ``size`` is the sum of the chunk sizes
    announced so far (what ``body_max`` limits).
    """

    __slots__ = ("body_max", "trailer_max", "line_max", "size", "done", "trailers",
                 "rest", "_state", "_need", "_pending", "_tsize")

    def __init__(self, body_max, trailer_max, line_max=CHUNK_LINE_MAX):
        self.body_max = body_max
        self.trailer_max = trailer_max
        self.line_max = line_max
        self.size = 0
        self.done = False
        self.trailers = []
        self.rest = b""
        self._state = _SIZE
        self._need = 0
        self._pending = b""
        self._tsize = 0

    def feed(self, data):
        """The chunk data in ``data`` (a list of bytes)."""
        out = []
        state = self._state
        if state == _DATA and not self._pending:
            # the common case: a read that is all chunk data
            need = self._need
            if len(data) < need:
                if data:
                    out.append(data)
                    self._need = need - len(data)
                return out
        if state == _DONE:
            raise RuntimeError("ChunkedDecoder.feed() after the end of the body")
        if self._pending:
            data = self._pending + data
            self._pending = b""
        pos = 0
        end = len(data)
        while pos < end:
            if state == _SIZE:
                # size lines, and as many whole chunks as the buffer holds
                find = data.find
                match = _SIZE_RE.fullmatch
                line_max = self.line_max
                body_max = self.body_max
                total = self.size
                append = out.append
                while True:
                    nl = find(b"\n", pos)
                    if nl < 0:
                        if end - pos > line_max:
                            raise HttpError(400, "chunk size line too long")
                        break
                    if nl - pos > line_max:
                        raise HttpError(400, "chunk size line too long")
                    if nl == pos or data[nl - 1] != 13:
                        raise HttpError(400, "bad chunk line ending")
                    m = match(data, pos, nl + 1)
                    if m is None:
                        raise HttpError(400, "bad chunk size")
                    size = int(m.group(1), 16)
                    pos = nl + 1
                    if size == 0:
                        state = _TRAILER
                        break
                    total += size
                    if total > body_max:
                        raise HttpError(413, "body too large")
                    nxt = pos + size
                    if end - nxt < 2:
                        self._need = size
                        state = _DATA
                        break
                    append(data[pos:nxt])
                    if data[nxt:nxt + 2] != b"\r\n":
                        raise HttpError(400, "chunk data not followed by CRLF")
                    pos = nxt + 2
                self.size = total
                if state == _SIZE:
                    break               # an incomplete size line
            elif state == _DATA:
                need = self._need
                if end - pos <= need:
                    out.append(data[pos:] if pos else data)
                    need -= end - pos
                    self._need = need
                    self._state = _DATA if need else _CRLF
                    return out
                out.append(data[pos:pos + need])
                pos += need
                self._need = 0
                state = _CRLF
            elif state == _CRLF:
                if end - pos < 2:
                    break
                if data[pos:pos + 2] != b"\r\n":
                    raise HttpError(400, "chunk data not followed by CRLF")
                pos += 2
                state = _SIZE
            elif state == _TRAILER:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    if end - pos > self.trailer_max:
                        raise HttpError(431, "trailers too large")
                    break
                line = data[pos:nl + 1]
                pos = nl + 1
                if line == b"\r\n":
                    state = _DONE
                    self.done = True
                    self.rest = data[pos:] if pos < end else b""
                    self._state = state
                    return out
                colon = line.find(b":")
                if not line.endswith(b"\r\n") or colon < 0 or b"\r" in line[:-2] \
                        or line[:1] in (b" ", b"\t"):
                    raise HttpError(400, "bad trailer field")
                self._tsize += len(line)
                if self._tsize > self.trailer_max:
                    raise HttpError(431, "trailers too large")
                self.trailers.append((line[:colon].decode("latin-1").lower(),
                                      line[colon + 1:-2].decode("latin-1").strip(" \t")))
        self._state = state
        if pos < end:
            self._pending = data[pos:]
        return out
