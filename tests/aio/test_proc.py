"""kore.proc."""

import os
import sys
import time

import gevent
import pytest

import kore
from kore.aio import drive, split_command

PY = sys.executable


async def _read_all(p, timeout_ms=-1):
    out = b""
    while True:
        chunk = await p.recv(4096, timeout_ms)
        if chunk is None:
            return out
        out += chunk


def _until(cond, timeout=10.0):
    """Let the hub run until ``cond()`` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in %s s" % timeout
        gevent.sleep(0.01)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("cmd,argv", [
    ("/bin/ls -l /tmp", ["/bin/ls", "-l", "/tmp"]),
    ("  a   b  ", ["a", "b"]),
    ('echo "hello world" x', ["echo", "hello world", "x"]),
    ('sh -c "echo a b"', ["sh", "-c", "echo a b"]),
    ('a "" b', ["a", "", "b"]),
    ('a "unterminated b', ["a", "unterminated b"]),
])
def test_split_command(cmd, argv):
    assert split_command(cmd) == argv


def test_output_and_exit_code(run):
    async def coro():
        p = kore.proc('/bin/echo "hello   world"')
        assert isinstance(p.pid, int) and p.pid > 0
        out = await _read_all(p)
        return out, await p.reap()
    assert run(coro()) == (b"hello   world\n", 0)


def test_path_lookup_and_nonzero_exit(run):
    async def coro():
        p = kore.proc("sh -c \"exit 3\"")
        return await _read_all(p), await p.reap()
    assert run(coro()) == (b"", 3)


def test_stderr_shares_the_pipe(run):
    async def coro():
        p = kore.proc("sh -c \"echo out; echo err 1>&2\"")
        out = await _read_all(p)
        await p.reap()
        return out
    assert run(coro()) == b"out\nerr\n"


def test_send_and_close_stdin(run):
    async def coro():
        p = kore.proc("cat")
        await p.send(b"ping\n")
        first = await p.recv(100)

        async def writer():
            await p.send(bytearray(b"x" * 200000))
            p.close_stdin()
        _, rest = await kore.gather(writer(), _read_all(p))
        return first, len(rest), await p.reap()
    assert run(coro()) == (b"ping\n", 200000, 0)


def test_send_after_close_stdin_is_an_error(run):
    async def coro():
        p = kore.proc("cat")
        p.close_stdin()
        with pytest.raises(RuntimeError, match="stdin closed"):
            p.send(b"x")
        return await p.reap()
    assert run(coro()) == 0


def test_send_to_exited_process_is_socket_eof(run):
    async def coro():
        p = kore.proc("true")
        await p.reap()
        with pytest.raises(RuntimeError, match="socket EOF"):
            for _ in range(100):
                await p.send(b"x" * 65536)
        return True
    assert run(coro())


def test_environment_is_inherited(run, monkeypatch):
    monkeypatch.setenv("KORE_AIO_TEST_VAR", "inherited")

    async def coro():
        p = kore.proc('sh -c "echo $KORE_AIO_TEST_VAR; echo $PATH"')
        out = await _read_all(p)
        await p.reap()
        return out.decode().split("\n")
    var, path, _ = run(coro())
    assert var == "inherited" and path == os.environ["PATH"]


def test_environment_given(run, monkeypatch):
    monkeypatch.setenv("KORE_AIO_TEST_VAR", "inherited")

    async def coro():
        p = kore.proc("/usr/bin/env", env=["A=1", "B=two=2"])
        out = await _read_all(p)
        await p.reap()
        return sorted(out.decode().split())
    assert run(coro()) == ["A=1", "B=two=2"]


def test_bad_env_and_command():
    with pytest.raises(TypeError):
        kore.proc("true", env="A=1")
    with pytest.raises(ValueError):
        kore.proc("true", env=["novalue"])
    with pytest.raises(ValueError):
        kore.proc("   ")
    with pytest.raises(TypeError):
        kore.proc(b"true")


def test_command_not_found(run):
    async def coro():
        with pytest.raises(RuntimeError, match="cannot execute 'no-such-command-xyz'"):
            kore.proc("no-such-command-xyz")
        return True
    assert run(coro())


def test_signalled_process_gives_raw_status(run):
    async def coro():
        p = kore.proc("sleep 30")
        p.kill()
        return await p.reap()
    assert run(coro()) == 9


def test_recv_timeout(run):
    async def coro():
        p = kore.proc("sleep 30")
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="timeout before operation completed"):
            await p.recv(10, 50)
        dt = time.monotonic() - t0
        p.kill()
        await p.reap()
        return dt
    # waited its 50 ms, and not for the process (30 s)
    assert 0.04 < run(coro()) < 10


def test_process_timeout_on_recv_raised_once(run):
    async def coro():
        p = kore.proc("sleep 30", 50)
        with pytest.raises(TimeoutError, match="timeout before process exited"):
            await p.recv(10)
        # raised once: the next wait is a plain one
        with pytest.raises(TimeoutError, match="operation completed"):
            await p.recv(10, 20)
        p.kill()
        return await p.reap()
    assert run(coro()) == 9


def test_process_timeout_on_reap(run):
    async def coro():
        p = kore.proc("sleep 30", 50)
        with pytest.raises(TimeoutError, match="timeout before process exited"):
            await p.reap()
        p.kill()
        return await p.reap()
    assert run(coro()) == 9


def test_process_timeout_not_hit(run):
    async def coro():
        p = kore.proc("echo fast", 2000)
        out = await _read_all(p)
        return out, await p.reap()
    assert run(coro()) == (b"fast\n", 0)


def test_reap_twice_and_concurrent_reap(run):
    async def coro():
        p = kore.proc("sleep 0.05")

        async def first():
            return p.reap()       # waits in its own greenlet

        g = gevent.spawn(drive, first())
        gevent.sleep(0)           # let it start waiting
        with pytest.raises(RuntimeError, match="already being reaped"):
            p.reap()
        g.join(5)
        return g.value, await p.reap(), True
    assert run(coro()) == (0, 0, True)


def test_cancel_while_awaiting_kills_and_reaps(run):
    pids = []

    async def handler():
        p = kore.proc("sleep 30")
        pids.append(p.pid)
        await p.recv(100)
    g = gevent.spawn(drive, handler())
    _until(lambda: pids)
    assert _alive(pids[0])
    g.kill(block=True, timeout=5)
    assert g.dead
    assert not _alive(pids[0])


def test_task_kill_while_reaping_kills_process():
    procs = []

    async def task():
        p = kore.proc("sleep 30")
        procs.append(p)
        await p.reap()
    tid = kore.task_create(task())
    # and into p.reap(): what is killed is a waiting reap
    _until(lambda: procs and procs[0]._reaping)
    assert kore.task_kill(tid) is True
    assert not _alive(procs[0].pid)


def test_dropped_proc_is_killed(run):
    async def coro():
        p = kore.proc("sleep 30")
        return p.pid
    pid = run(coro())
    import gc
    gc.collect()
    deadline = time.monotonic() + 3
    while _alive(pid) and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert not _alive(pid)


def test_many_processes_concurrently(run):
    async def one(i):
        p = kore.proc("%s -c \"import time; time.sleep(0.1); print(%d)\"" % (PY, i))
        out = await _read_all(p)
        await p.reap()
        return int(out)

    async def coro():
        t0 = time.monotonic()
        res = await kore.gather(*[one(i) for i in range(6)])
        return res, time.monotonic() - t0
    res, dt = run(coro(), timeout=20)
    assert res == list(range(6))


def test_reap_with_and_without_await_as_the_pages_show(run):
    # kore-python-api.md: retcode = proc.reap(); Kore's python-async example:
    # retcode = await proc.reap()
    async def coro():
        p = kore.proc('/bin/sh -c "exit 3"')
        rc = p.reap()
        q = kore.proc('/bin/sh -c "exit 4"')
        rc2 = await q.reap()
        return rc, rc2, type(rc2)
    rc, rc2, kind = run(coro())
    assert rc == 3 and rc2 == 4 and issubclass(kind, int)
