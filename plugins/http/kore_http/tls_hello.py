"""The ALPN ids a TLS ClientHello offers, read from its bytes (sans-I/O).

Python's SNI callback runs before ALPN is selected and cannot see what the
client offered, but ACME's tls-alpn-01 must give the challenge certificate
only to handshakes offering ``acme-tls/1``.  So when a plugin implements
``kore_tls_context``, the connection layer peeks (MSG_PEEK, nothing is
consumed) at the first TLS record and passes ``offered_alpn(data)`` on.
"""

import struct


def offered_alpn(data):
    """ALPN protocol ids (list of str) in the ClientHello at the start of
    ``data`` (a TLS record), [] when it offers none, None when ``data`` is
    not (or not yet completely) a ClientHello."""
    if len(data) < 5 or data[0] != 22:           # handshake record
        return None
    rec_len = struct.unpack_from("!H", data, 3)[0]
    body = data[5:5 + rec_len]
    if len(body) < rec_len or len(body) < 4 or body[0] != 1:   # ClientHello
        return None
    hs_len = int.from_bytes(body[1:4], "big")
    hello = body[4:4 + hs_len]
    if len(hello) < hs_len:
        return None                               # spans records: give up
    try:
        p = 2 + 32                                # version, random
        p += 1 + hello[p]                         # session id
        p += 2 + struct.unpack_from("!H", hello, p)[0]   # cipher suites
        p += 1 + hello[p]                         # compression methods
        if p == len(hello):
            return []
        ext_end = p + 2 + struct.unpack_from("!H", hello, p)[0]
        p += 2
        while p + 4 <= ext_end:
            etype, elen = struct.unpack_from("!HH", hello, p)
            p += 4
            if etype == 16:                       # application_layer_protocol_negotiation
                ids = []
                q = p + 2
                end = p + 2 + struct.unpack_from("!H", hello, p)[0]
                while q < end:
                    n = hello[q]
                    ids.append(hello[q + 1:q + 1 + n].decode("ascii", "replace"))
                    q += 1 + n
                return ids
            p += elen
    except (IndexError, struct.error):
        return None
    return []
