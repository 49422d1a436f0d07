"""kore.socket_wrap over TCP and UDP, AF_INET, AF_INET6 and AF_UNIX."""

import os
import socket

import gevent
import pytest

import kore
from kore.aio import drive
from kore_testing import gevent_wait_for


def _has_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_V6 = _has_ipv6()
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value
needs_v6 = pytest.mark.skipif(not HAS_V6, reason="no IPv6 loopback")


def _listener(family, tmp_path):
    s = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_UNIX:
        addr = str(tmp_path / "s.sock")
    else:
        addr = ("::1" if family == socket.AF_INET6 else "127.0.0.1", 0)
    s.bind(addr)
    s.listen(16)
    if family == socket.AF_UNIX:
        return s, (addr,)
    return s, s.getsockname()[:2]


async def _echo_server(ksrv, count):
    for _ in range(count):
        conn = await ksrv.accept()
        kore.task_create(_echo_conn(conn))


async def _echo_conn(conn):
    while True:
        data = await conn.recv(1024)
        if data is None:
            break
        await conn.send(data)
    conn.close()


FAMILIES = [socket.AF_INET, pytest.param(socket.AF_INET6, marks=needs_v6), socket.AF_UNIX]


@pytest.mark.parametrize("family", FAMILIES)
def test_tcp_echo_server_as_tasks(run, tmp_path, family):
    lsock, addr = _listener(family, tmp_path)
    ksrv = kore.socket_wrap(lsock)
    server = kore.task_create(_echo_server(ksrv, 3))

    async def client(i):
        c = kore.socket_wrap(socket.socket(family, socket.SOCK_STREAM))
        await c.connect(*addr)
        msg = b"hello %d" % i
        await c.send(msg)
        got = b""
        while len(got) < len(msg):
            got += await c.recv(1024)
        c.close()
        return got

    async def main():
        return await kore.gather(client(1), client(2), client(3))
    assert run(main()) == [b"hello 1", b"hello 2", b"hello 3"]
    kore.task_kill(server)
    ksrv.close()


def test_recv_none_at_eof_and_timeout(run, tmp_path):
    lsock, addr = _listener(socket.AF_INET, tmp_path)
    ksrv = kore.socket_wrap(lsock)

    async def main():
        c = kore.socket_wrap(socket.socket())
        await c.connect(*addr)
        conn = await ksrv.accept()
        assert isinstance(conn, kore.aio.socket)
        with pytest.raises(TimeoutError, match="timeout before operation completed"):
            await c.recv(10, 30)
        with pytest.raises(TimeoutError):
            await c.recv(10, 0)
        await conn.send(b"last")
        conn.close()
        first = await c.recv(10, 1000)
        eof = await c.recv(10)
        c.close()
        return first, eof
    assert run(main()) == (b"last", None)
    ksrv.close()


def test_send_to_closed_peer_raises_socket_eof(run, tmp_path):
    lsock, addr = _listener(socket.AF_INET, tmp_path)
    ksrv = kore.socket_wrap(lsock)

    async def main():
        c = kore.socket_wrap(socket.socket())
        await c.connect(*addr)
        conn = await ksrv.accept()
        conn.close()
        with pytest.raises(RuntimeError, match="socket EOF"):
            for _ in range(200):
                await c.send(b"x" * 65536)
        c.close()
        return True
    assert run(main())
    ksrv.close()


def test_connect_refused(run):
    # a bound socket that never listens holds the port: refused, and no
    # other process can listen there during the test
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]

    async def main():
        c = kore.socket_wrap(socket.socket())
        with pytest.raises(RuntimeError, match="refused"):
            await c.connect("127.0.0.1", port)
        c.close()
        return True
    try:
        assert run(main())
    finally:
        holder.close()


def test_connect_bad_port():
    c = kore.socket_wrap(socket.socket())
    with pytest.raises(RuntimeError, match="invalid port"):
        c.connect("127.0.0.1", 70000)
    c.close()


@pytest.mark.parametrize("family,host", [
    (socket.AF_INET, "127.0.0.1"),
    pytest.param(socket.AF_INET6, "::1", marks=needs_v6),
])
def test_udp_recvfrom_sendto(run, family, host):
    a = kore.socket_wrap(socket.socket(family, socket.SOCK_DGRAM))
    b = kore.socket_wrap(socket.socket(family, socket.SOCK_DGRAM))
    a._sock.bind((host, 0))
    b._sock.bind((host, 0))
    a_port = a._sock.getsockname()[1]
    b_port = b._sock.getsockname()[1]

    async def main():
        await b.sendto(host, a_port, b"ping")
        ip, port, data = await a.recvfrom(100)
        await a.sendto(ip, port, data + b"-pong")
        return (ip, port, data), await b.recvfrom(100)
    first, second = run(main())
    assert first == (host, b_port, b"ping")
    assert second == (host, a_port, b"ping-pong")
    a.close()
    b.close()


def test_udp_recvmsg_shape(run):
    a = kore.socket_wrap(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    a._sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    a._sock.bind(("127.0.0.1", 0))
    b = kore.socket_wrap(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    b._sock.bind(("127.0.0.1", 0))

    async def main():
        await b.sendto("127.0.0.1", a._sock.getsockname()[1], b"msg")
        return await a.recvmsg(100)
    ip, port, data, anc = run(main())
    assert (ip, port, data) == ("127.0.0.1", b._sock.getsockname()[1], b"msg")
    assert len(anc) == 1
    length, level, typ, payload = anc[0]
    assert level == socket.IPPROTO_IP and typ == IP_PKTINFO
    assert length == len(payload) and isinstance(payload, bytes)
    a.close()
    b.close()


def test_unix_dgram_paths_and_abstract(run, tmp_path):
    pa = str(tmp_path / "a.sock")
    a = kore.socket_wrap(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    a._sock.bind(pa)
    b = kore.socket_wrap(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    abstract = "@kore-aio-test-%d" % os.getpid()
    b._sock.bind("\0" + abstract[1:])
    anon = kore.socket_wrap(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))

    async def main():
        await b.sendto(pa, b"from-abstract")
        got1 = await a.recvfrom(100)
        await a.sendto(abstract, b"to-abstract")
        got2 = await b.recvfrom(100)
        await anon.sendto(pa, b"anon")
        got3 = await a.recvmsg(100)
        return got1, got2, got3
    got1, got2, got3 = run(main())
    assert got1 == (abstract, b"from-abstract")
    assert got2 == (pa, b"to-abstract")
    assert got3 == (None, b"anon", [])
    for s in (a, b, anon):
        s.close()


def test_unix_stream_connect_abstract(run):
    name = "@kore-aio-stream-%d" % os.getpid()
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind("\0" + name[1:])
    lsock.listen(4)
    ksrv = kore.socket_wrap(lsock)

    async def main():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c = kore.socket_wrap(sock)
        await c.connect(name)
        conn = await ksrv.accept()
        await c.send(b"abc")
        data = await conn.recv(10)
        c.close()          # as Kore's page: the Python socket's owner closes it
        sock.close()
        eof = await conn.recv(10)
        conn.close()
        return data, eof
    assert run(main()) == (b"abc", None)
    ksrv.close()


def test_one_recv_operation_per_socket(run, tmp_path):
    lsock, addr = _listener(socket.AF_INET, tmp_path)
    ksrv = kore.socket_wrap(lsock)

    async def main():
        c = kore.socket_wrap(socket.socket())
        await c.connect(*addr)
        conn = await ksrv.accept()

        async def reader():
            return await c.recv(10)
        g = gevent.spawn(drive, reader())
        while "recv" not in c._busy:    # until the reader waits in recv
            await kore.suspend(1)
        with pytest.raises(RuntimeError, match="only one recv operation"):
            await c.recv(10)
        await conn.send(b"x")
        g.join(1)
        conn.close()
        c.close()
        return g.value
    assert run(main()) == b"x"
    ksrv.close()


def test_close_wakes_pending_recv_with_none(run, tmp_path):
    lsock, addr = _listener(socket.AF_INET, tmp_path)
    ksrv = kore.socket_wrap(lsock)

    async def main():
        c = kore.socket_wrap(socket.socket())
        await c.connect(*addr)
        conn = await ksrv.accept()

        async def reader():
            return await c.recv(10)
        g = gevent.spawn(drive, reader())
        while "recv" not in c._busy:    # until the reader waits in recv
            await kore.suspend(1)
        c.close()
        g.join(1)
        conn.close()
        with pytest.raises(RuntimeError, match="closed"):
            c.recv(10)
        return g.dead, g.value
    assert run(main()) == (True, None)
    ksrv.close()


def test_cancelled_operation_closes_socket(tmp_path):
    lsock, addr = _listener(socket.AF_INET, tmp_path)
    ksrv = kore.socket_wrap(lsock)
    held = []

    async def handler():
        c = kore.socket_wrap(socket.socket())
        held.append(c)
        await c.connect(*addr)
        await c.recv(10)
    g = gevent.spawn(drive, handler())
    assert gevent_wait_for(lambda: held and "recv" in held[0]._busy)
    g.kill(block=True, timeout=2)
    assert held[0].fileno() == -1
    assert held[0]._sock.fileno() == -1
    ksrv.close()


def test_task_kill_during_accept_closes_listener(tmp_path):
    lsock, addr = _listener(socket.AF_INET, tmp_path)
    ksrv = kore.socket_wrap(lsock)
    tid = kore.task_create(_echo_server(ksrv, 1))
    assert gevent_wait_for(lambda: "recv" in ksrv._busy)    # waiting in accept()
    assert kore.task_kill(tid)
    assert lsock.fileno() == -1


def test_wrap_rejects_other_families_and_objects():
    with pytest.raises(TypeError):
        kore.socket_wrap(object())
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW) if hasattr(socket, "AF_NETLINK") else None
    if s is not None:
        with pytest.raises(RuntimeError, match="unsupported socket family"):
            kore.socket_wrap(s)
        s.close()


def test_send_requires_bytes_or_str():
    # str is sent as UTF-8 (the page's sock.send("hello world")); others refused
    c = kore.socket_wrap(socket.socket())
    with pytest.raises(TypeError):
        c.send(12)
    c.close()


def test_works_with_gevent_sockets(run, tmp_path):
    from gevent import socket as gsocket
    lsock = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    ksrv = kore.socket_wrap(lsock)
    port = lsock.getsockname()[1]

    async def main():
        c = kore.socket_wrap(gsocket.socket(gsocket.AF_INET, gsocket.SOCK_STREAM))
        await c.connect("127.0.0.1", port)
        conn = await ksrv.accept()
        await c.send(b"g")
        data = await conn.recv(5)
        with pytest.raises(TimeoutError):
            await conn.recv(5, 20)
        c.close()
        conn.close()
        return data
    assert run(main()) == b"g"
    ksrv.close()


def test_send_str_and_close_leaves_the_python_socket_open(run, tmp_path):
    # the page: await sock.send("hello world"); ksock.close(); sock.close()
    lsock, addr = _listener(socket.AF_INET, tmp_path)
    ksrv = kore.socket_wrap(lsock)

    async def server():
        conn = await ksrv.accept()
        data = await conn.recv(1024)
        await conn.send(b"echo:" + data)
        conn.close()

    async def client():
        kore.task_create(server())
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        ksock = kore.socket_wrap(sock)
        await ksock.connect(*addr)
        await ksock.send("hello world")
        reply = await ksock.recv(1024)
        ksock.close()
        still_open = sock.fileno() >= 0
        sock.close()
        return reply, still_open

    reply, still_open = run(client())
    assert reply == b"echo:hello world" and still_open
    ksrv.close()
    lsock.close()


def test_sendto_str_over_udp(run):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]

    async def coro():
        k = kore.socket_wrap(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        await k.sendto("127.0.0.1", str(port), "Hello world")
        k.close()

    run(coro())
    rx.settimeout(5)
    assert rx.recvfrom(100)[0] == b"Hello world"
    rx.close()
