"""Chunked request-body decoding: the sans-I/O ChunkedDecoder against the
loop that used to be inlined in the connection's body reader.

Both decode the same chunked bodies delivered as a list of reads (the
pieces socket.recv(65536) would return) into a sink that only counts bytes,
so what is timed is the framing work alone.

    .venv/bin/python bench/http/chunked.py [--mb 32] [--rounds 9]
"""

import argparse
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "plugins", "http"))

from kore_http.h1.chunked import ChunkedDecoder  # noqa: E402
from kore_http.parser import HttpError  # noqa: E402

CHUNK_LINE_MAX = 4096
BODY_MAX = 1 << 40
HEADER_MAX = 4096


_CHUNK_SIZE_RE = re.compile(rb"([0-9A-Fa-f]{1,15})(?:[ \t]*;[\t\x20-\x7e\x80-\xff]*)?\r?\n")


def chunk_size(line):
    """parser.chunk_size, which the inline loop called."""
    m = _CHUNK_SIZE_RE.fullmatch(line)
    if m is None:
        raise HttpError(400, "bad chunk size")
    return int(m.group(1), 16)


class _Reads:
    def __init__(self, pieces):
        self.pieces = pieces
        self.i = 0

    def __call__(self):
        p = self.pieces[self.i]
        self.i += 1
        return p


def inline_decode(reads, write):
    """The chunked branch of the former conn._read_body, verbatim but for
    _recv(c, deadline) -> reads() and the settings."""
    buf, pos = b"", 0
    total = 0
    while True:
        nl = buf.find(b"\n", pos)
        while nl < 0:
            if len(buf) - pos > CHUNK_LINE_MAX:
                raise HttpError(400, "chunk size line too long")
            buf = buf[pos:] + reads()
            pos = 0
            nl = buf.find(b"\n")
        if nl - pos > CHUNK_LINE_MAX:
            raise HttpError(400, "chunk size line too long")
        line = buf[pos:nl + 1]
        if not line.endswith(b"\r\n"):
            raise HttpError(400, "bad chunk line ending")
        size = chunk_size(line)
        pos = nl + 1
        if size == 0:
            break
        total += size
        if total > BODY_MAX:
            raise HttpError(413, "body too large")
        while len(buf) - pos < size + 2:
            if len(buf) - pos > 65536 and len(buf) - pos < size:
                piece = buf[pos:]
                write(piece)
                size -= len(piece)
                buf, pos = reads(), 0
                continue
            buf = buf[pos:] + reads()
            pos = 0
        write(buf[pos:pos + size])
        pos += size
        if buf[pos:pos + 2] != b"\r\n":
            raise HttpError(400, "chunk data not followed by CRLF")
        pos += 2
    tsize = 0
    while True:
        nl = buf.find(b"\n", pos)
        while nl < 0:
            if len(buf) - pos > HEADER_MAX:
                raise HttpError(431, "trailers too large")
            buf = buf[pos:] + reads()
            pos = 0
            nl = buf.find(b"\n")
        line = buf[pos:nl + 1]
        pos = nl + 1
        if line == b"\r\n":
            break
        if not line.endswith(b"\r\n") or b":" not in line or b"\r" in line[:-2] \
                or line[:1] in (b" ", b"\t"):
            raise HttpError(400, "bad trailer field")
        tsize += len(line)
        if tsize > HEADER_MAX:
            raise HttpError(431, "trailers too large")
    return buf, pos


def decoder_decode(reads, write):
    """What the connection loop does with ChunkedDecoder."""
    dec = ChunkedDecoder(BODY_MAX, HEADER_MAX)
    while True:
        for piece in dec.feed(reads()):
            write(piece)
        if dec.done:
            return dec.rest, 0


def make_body(total, chunk, read=65536):
    one = b"%x\r\n" % chunk + b"x" * chunk + b"\r\n"
    body = one * (total // chunk) + b"0\r\n\r\n"
    return [body[i:i + read] for i in range(0, len(body), read)]


class Count:
    n = 0

    def __call__(self, data):
        self.n += len(data)


def run(fns, pieces, rounds):
    """Best time of each fn over ``rounds`` rounds, the fns interleaved
    within a round so that load from elsewhere hits them alike."""
    best = [None] * len(fns)
    counts = [0] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            sink = Count()
            t = time.perf_counter()
            fn(_Reads(pieces), sink)
            dt = time.perf_counter() - t
            if best[i] is None or dt < best[i]:
                best[i] = dt
            counts[i] = sink.n
    return best, counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=32, help="body size per case (MiB)")
    ap.add_argument("--rounds", type=int, default=9, help="best of N (interleaved)")
    a = ap.parse_args()
    total = a.mb << 20
    print("%-28s %12s %12s %8s" % ("case", "inline MB/s", "decoder MB/s", "ratio"))
    for label, chunk, read in (("1 MiB chunks, 64k reads", 1 << 20, 65536),
                               ("64 KiB chunks, 64k reads", 65536, 65536),
                               ("16 KiB chunks, 64k reads", 16384, 65536),
                               ("16 KiB chunks, 4k reads", 16384, 4096),
                               ("1 KiB chunks, 64k reads", 1024, 65536),
                               ("64 B chunks, 64k reads", 64, 65536)):
        size = total if chunk >= 16384 else total // 8
        pieces = make_body(size, chunk, read)
        (t_old, t_new), (n_old, n_new) = run((inline_decode, decoder_decode), pieces, a.rounds)
        assert n_old == n_new == (size // chunk) * chunk
        mb = n_new / 1e6
        print("%-28s %12.0f %12.0f %7.2fx" % (label, mb / t_old, mb / t_new, t_old / t_new))


if __name__ == "__main__":
    main()
