"""Messages between the master and its workers.

The master holds one ``socketpair`` per worker.  A message is typed by a
string ``kind`` namespaced by the plugin that owns it (``"kore.sendobj"``,
``"websocket.broadcast"``), carries ``payload`` bytes, and is addressed to
the master (``MASTER``), one worker (its id) or ``ALL_WORKERS``.  Workers
never talk to each other directly: the master routes.

Wire format of a frame: ``!IiiH`` (payload length, dst, src, kind length),
the kind in UTF-8, then the payload.
"""

from __future__ import annotations

import socket
import struct
from typing import Optional, Tuple, Union

from gevent.lock import Semaphore

MASTER = 0
ALL_WORKERS = -1

# Kinds the kernel itself sends (plugins prefix theirs with their own name).
MSG_READY = "kore.ready"            # worker -> master: booted, serving
MSG_BOOT_ERROR = "kore.boot_error"  # worker -> master: why the boot failed
MSG_SHUTDOWN = "kore.shutdown"      # worker -> master: kore.shutdown()/fatalx()
MSG_SENDOBJ = "kore.sendobj"        # any -> workers: kore.sendobj(obj)

_HEAD = struct.Struct("!IiiH")
MAX_PAYLOAD = 64 * 1024 * 1024


class Message:
    __slots__ = ("kind", "payload", "dst", "src")

    def __init__(self, kind: str, payload: Union[bytes, str] = b"", dst: int = MASTER,
                 src: Optional[int] = None) -> None:
        self.kind = kind
        self.payload = payload
        self.dst = dst
        self.src = src

    def __repr__(self) -> str:
        return "<Message %s %d bytes %s -> %s>" % (self.kind, len(self.payload),
                                                  self.src, self.dst)


class ChannelClosed(Exception):
    """The other end of the channel is gone (or this end was closed)."""


class Channel:
    """One end of a master/worker socketpair (cooperative under gevent)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._wlock = Semaphore()
        self._buf = bytearray()
        self.closed = False

    @classmethod
    def pair(cls) -> Tuple["Channel", "Channel"]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, msg: Message) -> None:
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

    def recv(self) -> Message:
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

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
