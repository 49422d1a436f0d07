"""The PROXY protocol header (HAProxy's v1 text and v2 binary forms), parsed
without I/O.

A trusted load balancer sends it before the first request so the server
learns the client's address.  ``parse(buf)`` is called with everything
received so far on the connection, after each read, until it returns a
result; it never needs more than the header itself and leaves the bytes
after it (the first request) to the caller.

What is accepted (as the server always did):

* v1: ``PROXY TCP4|TCP6 src dst sport dport CRLF``: the source address is
  taken as written (not validated); ``PROXY UNKNOWN ...CRLF`` gives no
  address.  A buffer without CRLF past 107 bytes is refused (400).
* v2: the 12-byte signature, a version/command byte, the family byte and a
  16-bit length, then that many bytes (addresses, then TLVs, which are
  skipped).  The PROXY command (low nibble 1) with AF_INET (high nibble 1,
  at least 12 address bytes) or AF_INET6 (2, at least 36) gives the source
  address; LOCAL (0), other commands, AF_UNIX (3) and UNSPEC (0) give none.
  The version nibble is not checked.

Anything else, at the first byte that cannot start either form, is refused
with HttpError(400).
"""

import socket

from .parser import HttpError

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX = 107                # the longest v1 line, CRLF included


def parse(buf):
    """``None`` while ``buf`` holds an incomplete header, else ``(address,
    length)``: the client's source address (str, or None when the header
    carries none) and the header's length in bytes (the request starts at
    ``buf[length:]``).  Raises HttpError(400) for anything else."""
    if not (buf[:5] == b"PROXY" and b"\n" in buf):
        if not (b"PROXY".startswith(buf[:5]) or V2_SIGNATURE.startswith(buf[:12])):
            raise HttpError(400, "PROXY protocol header expected")
        if len(buf) < 16:
            return None
    if buf[:5] == b"PROXY":
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) > V1_MAX:
                raise HttpError(400, "PROXY header too long")
            return None
        parts = buf[:end].split(b" ")
        if len(parts) == 6 and parts[1] in (b"TCP4", b"TCP6"):
            return parts[2].decode("ascii", "replace"), end + 2
        if len(parts) >= 2 and parts[1] == b"UNKNOWN":
            return None, end + 2
        raise HttpError(400, "bad PROXY header")
    if buf[:12] != V2_SIGNATURE:
        raise HttpError(400, "PROXY protocol header expected")
    length = 16 + int.from_bytes(buf[14:16], "big")
    if len(buf) < length:
        return None
    address = None
    if buf[12] & 0x0F == 1:                 # the PROXY command
        family = buf[13] >> 4
        body = buf[16:length]
        if family == 1 and len(body) >= 12:
            address = socket.inet_ntop(socket.AF_INET, body[0:4])
        elif family == 2 and len(body) >= 36:
            address = socket.inet_ntop(socket.AF_INET6, body[0:16])
    return address, length
