"""multipart/form-data parsing: kore_http.multipart (the multipart package's
push parser) against the split-based parser it replaced and, when it is
installed, python-multipart.

All three parse the same in-memory bodies.  File parts stay in memory for
the first two; python-multipart moves a file part past 1 MiB to a temporary
file (its default), so its big-file figure includes that write.

    .venv/bin/python bench/http/multipart_forms.py [--rounds 7]
    # the optional peer: .venv/bin/pip install python-multipart
"""

import argparse
import io
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "plugins", "http"))

from kore_http.multipart import header_params, parse_form  # noqa: E402

CT = "multipart/form-data; boundary=XX"


def split_parse(body, content_type):
    """The former forms.parse_multipart (split on the bare boundary), minus
    the HttpFile objects: (fields, [(name, filename, ctype, data)])."""
    ctype, params = header_params(content_type or "")
    delim = b"--" + params["boundary"].encode("latin-1")
    fields, files = [], []
    parts = body.split(delim)
    for part in parts[1:-1]:
        if part.startswith(b"\r\n"):
            part = part[2:]
        elif part.startswith(b"\n"):
            part = part[1:]
        if part.endswith(b"\r\n"):
            part = part[:-2]
        elif part.endswith(b"\n"):
            part = part[:-1]
        sep = part.find(b"\r\n\r\n")
        seplen = 4
        if sep < 0:
            sep = part.find(b"\n\n")
            seplen = 2
        hdrs = {}
        for line in re.split(rb"\r?\n", part[:sep]):
            n, _, v = line.decode("latin-1").partition(":")
            hdrs[n.strip().lower()] = v.strip()
        data = part[sep + seplen:]
        disp, dparams = header_params(hdrs.get("content-disposition", ""))
        name = dparams.get("name")
        if disp != "form-data" or name is None:
            continue
        if "filename" in dparams:
            files.append((name, dparams["filename"], hdrs.get("content-type"), data))
        else:
            fields.append((name, data.decode("utf-8", "replace")))
    return fields, files


def python_multipart_parse(body, content_type):
    import python_multipart
    fields, files = [], []
    python_multipart.parse_form(
        {"Content-Type": content_type.encode(), "Content-Length": str(len(body)).encode()},
        io.BytesIO(body), fields.append, files.append)
    return fields, files


def make(file_mib, nfields):
    block = bytes(range(256)) * 256            # 64 KiB with every byte value
    out = [b'--XX\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nvalue %d\r\n' % (i, i)
           for i in range(nfields)]
    if file_mib:
        out.append(b'--XX\r\nContent-Disposition: form-data; name="up"; filename="a.bin"\r\n'
                   b'Content-Type: application/octet-stream\r\n\r\n'
                   + block * (file_mib * 16) + b"\r\n")
    out.append(b"--XX--\r\n")
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="best of N (interleaved)")
    a = ap.parse_args()
    peers = [("split (old)", split_parse), ("kore_http.multipart", parse_form)]
    try:
        import python_multipart  # noqa: F401
        peers.append(("python-multipart", python_multipart_parse))
    except ImportError:
        print("(python-multipart not installed: skipped)")
    print("%-28s" % "body" + "".join("%22s" % p[0] for p in peers))
    for label, body in (("10 MiB file + 10 fields", make(10, 10)),
                        ("1 MiB file", make(1, 0)),
                        ("900 small fields", make(0, 900))):
        best = [None] * len(peers)
        for _ in range(a.rounds):
            for i, (_name, fn) in enumerate(peers):
                t = time.perf_counter()
                fn(body, CT)
                dt = time.perf_counter() - t
                best[i] = dt if best[i] is None or dt < best[i] else best[i]
        print("%-28s" % label + "".join("%19.2f ms" % (b * 1000) for b in best))


if __name__ == "__main__":
    main()
