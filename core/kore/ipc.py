"""Messages between the master and its workers.

The master holds one ``socketpair`` per worker.  A message is typed by a
string ``kind`` namespaced by the plugin that owns it (``"kore.sendobj"``,
``"websocket.broadcast"``), carries ``payload`` bytes, and is addressed to
the master (``MASTER``), one worker (its id) or ``ALL_WORKERS``.  Workers
never talk to each other directly: the master routes.

Wire format of a frame: ``!IiiH`` (payload length, dst, src, kind length),
the kind in UTF-8, then the payload.
"""

import socket
import struct

from gevent.lock import Semaphore

MASTER = 0
ALL_WORKERS = -1

_HEAD = struct.Struct("!IiiH")
MAX_PAYLOAD = 64 * 1024 * 1024


class Message:
    __slots__ = ("kind", "payload", "dst", "src")

    def __init__(self, kind, payload=b"", dst=MASTER, src=None):
        self.kind = kind
        self.payload = payload
        self.dst = dst
        self.src = src

    def __repr__(self):
        return "<Message %s %d bytes %s -> %s>" % (self.kind, len(self.payload),
                                                  self.src, self.dst)


class ChannelClosed(Exception):
    pass


class Channel:
    """One end of a master/worker socketpair (cooperative under gevent)."""

    def __init__(self, sock):
        self.sock = sock
        self._wlock = Semaphore()
        self._buf = bytearray()
        self.closed = False

    @classmethod
    def pair(cls):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(a), cls(b)

    def fileno(self):
        return self.sock.fileno()

    def send(self, msg):
        kind = msg.kind.encode("utf-8")
        payload = msg.payload
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if len(payload) > MAX_PAYLOAD:
            raise ValueError("message payload too large (%d bytes)" % len(payload))
        src = -2 if msg.src is None else msg.src
        data = _HEAD.pack(len(payload), msg.dst, src, len(kind)) + kind + payload
        with self._wlock:
            if self.closed:
                raise ChannelClosed("channel closed")
            try:
                self.sock.sendall(data)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None

    def recv(self):
        """Block (cooperatively) for the next message; ChannelClosed at EOF."""
        buf = self._buf
        while True:
            if len(buf) >= _HEAD.size:
                plen, dst, src, klen = _HEAD.unpack_from(buf)
                total = _HEAD.size + klen + plen
                if len(buf) >= total:
                    kind = bytes(buf[_HEAD.size:_HEAD.size + klen]).decode("utf-8")
                    payload = bytes(buf[_HEAD.size + klen:total])
                    del buf[:total]
                    return Message(kind, payload, dst, None if src == -2 else src)
            try:
                chunk = self.sock.recv(262144)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None
            if not chunk:
                raise ChannelClosed("peer closed")
            buf += chunk

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
