"""Parse masked client frames and encode server frames: kore_websocket's
framer against wsproto's, same inputs, same process.

    python bench/websocket/framer.py
"""

import os
import time

from wsproto.frame_protocol import FrameProtocol, Opcode

from kore_websocket import frames


def masked(op, payload):
    mask = os.urandom(4)
    n = len(payload)
    body = frames.unmask(mask, payload)
    if n < 126:
        head = bytes((0x80 | op, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | op, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | op, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + mask + body


def run(size, count):
    payload = os.urandom(size)
    stream = b"".join(masked(2, payload) for _ in range(count))

    t = time.perf_counter()
    buf = bytearray(stream)
    pos = 0
    got = 0
    while True:
        r = frames.parse_frame(buf, pos, 1 << 30)
        if r is None:
            break
        pos = r[2]
        got += 1
    for _ in range(count):
        frames.encode(2, payload)
    mine = time.perf_counter() - t
    assert got == count

    t = time.perf_counter()
    fp = FrameProtocol(client=False, extensions=[])
    fp.receive_bytes(stream)
    got = sum(1 for _ in fp.received_frames())
    for _ in range(count):
        fp.send_data(payload, fin=True)
    theirs = time.perf_counter() - t
    assert got == count
    print("%7d-byte frames x %5d: kore %.1f ms, wsproto %.1f ms, wsproto/kore %.1fx"
          % (size, count, mine * 1e3, theirs * 1e3, theirs / mine))


if __name__ == "__main__":
    for size, count in ((16, 20000), (1024, 10000), (65536, 500), (1 << 20, 20)):
        run(size, count)
