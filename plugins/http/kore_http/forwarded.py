"""What a trusted proxy says about the client: RFC 7239 ``Forwarded`` and
the de-facto ``X-Forwarded-For`` / ``X-Forwarded-Proto`` (pure functions).

Only peers in ``http_forwarded_allow_ips`` are believed (``stream.trusted``);
each proxy appends itself, so the entry the nearest (trusted) proxy added is
the last one.
"""

import re

_PAIR = re.compile(r'\s*([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')


def parse_forwarded(value):
    """RFC 7239: a list of dicts (lower-case keys: for, by, host, proto),
    one per hop, in order; malformed elements are skipped."""
    out = []
    for element in value.split(","):
        pairs = {}
        for part in element.split(";"):
            m = _PAIR.fullmatch(part)
            if m is None:
                if part.strip():
                    pairs = None
                    break
                continue
            v = m.group(2)
            if v.startswith('"'):
                v = re.sub(r"\\(.)", r"\1", v[1:-1])
            pairs[m.group(1).lower()] = v
        if pairs:
            out.append(pairs)
    return out


def node_address(node):
    """The address of a Forwarded ``for=`` node: "[2001:db8::1]:80" ->
    "2001:db8::1", "192.0.2.1:80" -> "192.0.2.1"; None for obfuscated
    ("_hidden") and "unknown" nodes."""
    if not node or node == "unknown" or node.startswith("_"):
        return None
    if node.startswith("["):
        end = node.find("]")
        return node[1:end] if end > 0 else None
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


def client_address(headers):
    """The client address the nearest proxy gives in ``headers`` (a list of
    (lower-case name, value)): Forwarded first, then X-Forwarded-For; None."""
    fwd = [v for n, v in headers if n == "forwarded"]
    if fwd:
        hops = parse_forwarded(",".join(fwd))
        for hop in reversed(hops):
            if "for" in hop:
                return node_address(hop["for"])
        return None
    xff = [v for n, v in headers if n == "x-forwarded-for"]
    if xff:
        last = ",".join(xff).split(",")[-1].strip()
        return last or None
    return None


def client_scheme(headers):
    """"http" or "https" as the nearest proxy says (Forwarded proto=, then
    X-Forwarded-Proto), or None."""
    fwd = [v for n, v in headers if n == "forwarded"]
    if fwd:
        for hop in reversed(parse_forwarded(",".join(fwd))):
            proto = hop.get("proto", "").lower()
            if proto in ("http", "https"):
                return proto
        return None
    for n, v in reversed(headers):
        if n == "x-forwarded-proto":
            proto = v.split(",")[-1].strip().lower()
            return proto if proto in ("http", "https") else None
    return None
