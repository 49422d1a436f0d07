"""kore.socket_wrap: awaitable operations on a non-blocking socket."""

import errno
import os
import socket as _socket
from time import monotonic

from . import _io

_FAMILIES = (_socket.AF_INET, _socket.AF_INET6, _socket.AF_UNIX)
_EOF_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
_IN_PROGRESS = (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK, errno.EAGAIN)
OP_TIMEOUT_MSG = "timeout before operation completed"


class _SockOp:
    __slots__ = ("sock", "kind", "fn", "args")

    def __init__(self, sock, kind, fn, args):
        self.sock = sock
        self.kind = kind
        self.fn = fn
        self.args = args

    def __await__(self):
        return self.sock._run(self.kind, self.fn, self.args)
        yield  # noqa: unreachable

    def __repr__(self):
        return "<kore.socketop %s>" % self.fn.__name__.lstrip("_")


def _unix_name(addr):
    """Kore's shape for an AF_UNIX peer: a path, '@name' for an abstract
    socket, None when unnamed."""
    if isinstance(addr, bytes):
        if not addr:
            return None
        if addr[:1] == b"\0":
            return "@" + addr[1:].decode("utf-8", "surrogateescape")
        return addr.decode("utf-8", "surrogateescape")
    if not addr:
        return None
    if addr[0] == "\0":
        return "@" + addr[1:]
    return addr


def _unix_addr(path):
    if not isinstance(path, str):
        raise TypeError("AF_UNIX address must be a str path")
    if path.startswith("@"):
        return "\0" + path[1:]
    return path


class socket:
    """A socket wrapped by ``kore.socket_wrap(sock)``."""

    __slots__ = ("_sock", "family", "type", "_waits", "_busy", "_closed", "_owned",
                 "__weakref__")

    def __init__(self, sock, owned=False):
        for attr in ("fileno", "family", "type"):
            if not hasattr(sock, attr):
                raise TypeError("kore.socket_wrap: expected a socket object, got %s"
                                % type(sock).__name__)
        if sock.family not in _FAMILIES:
            raise RuntimeError("kore.socket_wrap: unsupported socket family %r"
                               % (sock.family,))
        if sock.fileno() < 0:
            raise RuntimeError("kore.socket_wrap: socket is closed")
        sock.setblocking(False)
        self._sock = sock
        self.family = sock.family
        self.type = sock.type
        self._waits = _io.FdWaits()
        self._busy = set()
        self._closed = False
        self._owned = owned      # made by accept(): close() closes it

    def fileno(self):
        return -1 if self._closed else self._sock.fileno()

    # -- operations (each returns an awaitable) --------------------------

    def recv(self, n, timeout_ms=-1):
        """Up to ``n`` bytes; None at EOF; TimeoutError after ``timeout_ms``
        milliseconds (-1 waits forever, 0 polls)."""
        _check_len(n)
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool):
            raise TypeError("timeout must be an int (milliseconds)")
        return self._op("recv", self._recv, (n, timeout_ms))

    def recvfrom(self, n):
        """``(ip, port, data)`` for IP sockets, ``(path or None, data)`` for
        AF_UNIX; None at EOF of a stream socket."""
        _check_len(n)
        return self._op("recv", self._recvfrom, (n,))

    def recvmsg(self, n):
        """Like recvfrom with the ancillary data appended as a list of
        ``(len, level, type, data)``."""
        _check_len(n)
        return self._op("recv", self._recvmsg, (n,))

    def accept(self):
        """A new kore.socket for the next incoming connection."""
        return self._op("recv", self._accept, ())

    def send(self, data):
        """Send all of ``data`` (bytes, or str sent as UTF-8 as the page's
        ``sock.send("hello world")``); RuntimeError("socket EOF") if the
        peer closed the connection first."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        data = memoryview(data).cast("B")
        return self._op("send", self._send, (data,))

    def sendto(self, *args):
        """``sendto(ip, port, data)`` or, for AF_UNIX, ``sendto(path, data)``."""
        if self.family == _socket.AF_UNIX:
            if len(args) != 2:
                raise TypeError("sendto(path, data) on an AF_UNIX socket")
            addr = _unix_addr(args[0])
            data = args[1]
            if isinstance(data, str):
                data = data.encode("utf-8")
        else:
            if len(args) != 3:
                raise TypeError("sendto(ip, port, data)")
            host, port, data = args
            if isinstance(port, str) and port.isdigit():
                port = int(port)
            addr = (host, port)
        if isinstance(data, str):
            data = data.encode("utf-8")
        data = memoryview(data).cast("B")
        return self._op("send", self._sendto, (addr, data))

    def connect(self, host, port=0):
        """Connect to ``host:port`` (IP sockets) or the path ``host``
        (AF_UNIX, ``@name`` for an abstract socket)."""
        if self.family == _socket.AF_UNIX:
            addr = _unix_addr(host)
        else:
            if not isinstance(port, int) or not 0 <= port <= 65535:
                raise RuntimeError("invalid port number")
            addr = (host, port)
        return self._op("send", self._connect, (addr,))

    def close(self):
        """Close the kore socket; operations waiting on it return None.  As
        Kore's page says, a Python socket given to ``kore.socket_wrap`` is
        not closed (its owner closes it); one that ``accept()`` made is."""
        if not self._closed:
            self._closed = True
            self._waits.cancel_all()
            if self._owned:
                try:
                    self._sock.close()
                except OSError:
                    pass
        return True

    # -- machinery -----------------------------------------------------------

    def _op(self, kind, fn, args):
        if self._closed:
            raise RuntimeError("socket is closed")
        if kind in self._busy:
            raise RuntimeError("only one %s operation can be done per socket" % kind)
        return _SockOp(self, kind, fn, args)

    def _run(self, kind, fn, args):
        if self._closed:
            raise RuntimeError("socket is closed")
        if kind in self._busy:
            raise RuntimeError("only one %s operation can be done per socket" % kind)
        self._busy.add(kind)
        try:
            return fn(*args)
        except _io.Closed:
            return None
        except Exception:
            raise
        except BaseException:
            # cancelled (GreenletExit) in the middle of an operation: the
            # socket is in an unknown state, so it is closed, wrapped or not
            self._owned = True
            self.close()
            raise
        finally:
            self._busy.discard(kind)

    def _wait(self, event, deadline=None):
        if self._closed:
            raise _io.Closed()
        if deadline is None:
            self._waits.wait(self._sock.fileno(), event)
            return
        try:
            self._waits.wait(self._sock.fileno(), event, deadline - monotonic())
        except _io.TimedOut:
            raise TimeoutError(OP_TIMEOUT_MSG) from None

    def _recv(self, n, timeout_ms):
        deadline = None if timeout_ms < 0 else monotonic() + timeout_ms / 1000.0
        sock = self._sock
        while True:
            try:
                data = sock.recv(n)
            except BlockingIOError:
                self._wait(_io.READ, deadline)
                continue
            except InterruptedError:
                continue
            except _EOF_ERRORS:
                return None
            except OSError as exc:
                raise RuntimeError(exc.strerror or str(exc)) from None
            return data or None

    def _recv_loop(self, call):
        while True:
            try:
                return call()
            except BlockingIOError:
                self._wait(_io.READ)
            except InterruptedError:
                pass
            except _EOF_ERRORS:
                return None
            except OSError as exc:
                raise RuntimeError(exc.strerror or str(exc)) from None

    def _peer(self, addr, *rest):
        if self.family == _socket.AF_UNIX:
            return (_unix_name(addr),) + rest
        return (addr[0], addr[1]) + rest

    def _recvfrom(self, n):
        res = self._recv_loop(lambda: self._sock.recvfrom(n))
        if res is None:
            return None
        data, addr = res
        if not data and self.type == _socket.SOCK_STREAM:
            return None
        return self._peer(addr, data)

    def _recvmsg(self, n):
        res = self._recv_loop(lambda: self._sock.recvmsg(n, 1024))
        if res is None:
            return None
        data, ancdata, _flags, addr = res
        if not data and not ancdata and self.type == _socket.SOCK_STREAM:
            return None
        anc = [(len(d), level, typ, d) for level, typ, d in ancdata]
        if addr is None and self.family != _socket.AF_UNIX:
            addr = self._sock.getpeername()
        return self._peer(addr, data, anc)

    def _accept(self):
        while True:
            try:
                conn, _addr = self._sock.accept()
            except BlockingIOError:
                self._wait(_io.READ)
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                raise RuntimeError(exc.strerror or str(exc)) from None
            return socket(conn, owned=True)

    def _write_op(self, op):
        """op() until it goes through, waiting while the socket is full;
        Kore's errors: RuntimeError("socket EOF") when the peer is gone."""
        while True:
            try:
                return op()
            except BlockingIOError:
                try:
                    self._wait(_io.WRITE)
                except _io.Closed:
                    raise RuntimeError("socket EOF") from None
            except InterruptedError:
                pass
            except _EOF_ERRORS:
                raise RuntimeError("socket EOF") from None
            except OSError as exc:
                raise RuntimeError(exc.strerror or str(exc)) from None

    def _send(self, data):
        send = self._sock.send
        view = memoryview(data)
        off = 0
        total = len(view)
        while off < total:
            rest = view[off:]
            off += self._write_op(lambda: send(rest))
        return None

    def _sendto(self, addr, data):
        sock = self._sock
        self._write_op(lambda: sock.sendto(data, addr))
        return None

    def _connect(self, addr):
        sock = self._sock
        while True:
            try:
                err = sock.connect_ex(addr)
            except OSError as exc:   # name resolution, bad address
                raise RuntimeError(exc.strerror or str(exc)) from None
            if err in (0, errno.EISCONN):
                return None
            if err == errno.EAGAIN and self.family == _socket.AF_UNIX:
                # the listener's backlog is full: try again shortly
                import gevent
                gevent.sleep(0.005)
                continue
            if err not in _IN_PROGRESS:
                raise RuntimeError(os.strerror(err))
            try:
                self._wait(_io.WRITE)
            except _io.Closed:
                raise RuntimeError("socket closed") from None
            err = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
            if err == 0:
                return None
            raise RuntimeError(os.strerror(err))

    def __repr__(self):
        return "<kore.socket fd %d>" % self.fileno()


def _check_len(n):
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ValueError("length must be a positive int")


def socket_wrap(sock):
    """Wrap a Python socket (TCP or UDP over AF_INET, AF_INET6 or AF_UNIX)
    in a kore.socket whose operations are awaitable."""
    return socket(sock)
