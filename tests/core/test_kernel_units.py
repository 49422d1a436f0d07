"""In-process unit tests of the kernel's pure parts: IPC framing, the reload
state machine, the pidfile, the option registry's reset, kore.conf parsing,
the start-up signal hold."""

import os
import signal
import subprocess
import sys
import textwrap

import gevent
import pytest

from kore import ipc, reload, signals
from kore.config import ConfigError, Option, Registry
from kore.confparse import load as load_conf
from kore.pidfile import Pidfile

import korectl

# -- ipc.Channel -------------------------------------------------------------


def _gevent_pair():
    from gevent import socket as gsocket
    x, y = gsocket.socketpair()
    return ipc.Channel(x), ipc.Channel(y)


def test_channel_round_trip_and_addresses():
    a, b = _gevent_pair()
    try:
        a.send(ipc.Message("hello.ping", b"\x00\x01payload", dst=3, src=7))
        a.send(ipc.Message("kore.ready"))
        a.send(ipc.Message("text.kind", "h\u00e9llo", dst=ipc.ALL_WORKERS))
        m1, m2, m3 = b.recv(), b.recv(), b.recv()
        assert (m1.kind, m1.payload, m1.dst, m1.src) == ("hello.ping", b"\x00\x01payload", 3, 7)
        assert (m2.kind, m2.payload, m2.dst, m2.src) == ("kore.ready", b"", ipc.MASTER, None)
        assert (m3.payload, m3.dst) == ("h\u00e9llo".encode("utf-8"), ipc.ALL_WORKERS)
    finally:
        a.close()
        b.close()


def test_channel_reassembles_frames_split_anywhere():
    """The reader buffers partial frames: feed a frame one byte at a time."""
    from gevent import socket as gsocket     # cooperative: this process is not patched
    raw_a, raw_b = gsocket.socketpair()
    writer = ipc.Channel(raw_a)
    reader = ipc.Channel(raw_b)
    frames = []
    capture = ipc.Channel.__new__(ipc.Channel)

    class Sock:
        def sendall(self, data):
            frames.append(data)
    capture.sock, capture.closed = Sock(), False
    from gevent.lock import Semaphore
    capture._wlock = Semaphore()
    capture.send(ipc.Message("k.one", b"x" * 300, dst=2, src=1))
    capture.send(ipc.Message("k.two", b"", dst=1, src=2))
    data = b"".join(frames)

    def trickle():
        for i in range(len(data)):
            raw_a.send(data[i:i + 1])
            gevent.sleep(0)
    g = gevent.spawn(trickle)
    one, two = reader.recv(), reader.recv()
    g.join(5)
    assert (one.kind, len(one.payload), one.dst, one.src) == ("k.one", 300, 2, 1)
    assert (two.kind, two.payload) == ("k.two", b"")
    writer.close()
    with pytest.raises(ipc.ChannelClosed):
        reader.recv()
    reader.close()


def test_channel_refuses_oversized_payloads_and_closed_ends():
    a, b = _gevent_pair()
    with pytest.raises(ValueError, match="too large"):
        a.send(ipc.Message("k", b"\0" * (ipc.MAX_PAYLOAD + 1)))
    a.close()
    with pytest.raises(ipc.ChannelClosed):
        a.send(ipc.Message("k"))
    b.close()


# -- reload.Reload -------------------------------------------------------------

class Slot:
    def __init__(self, wid, generation, ready=False, pid=None):
        self.id = wid
        self.generation = generation
        self.ready = ready
        self.pid = pid or (1000 * generation + wid)
        self.retiring = False


def test_reload_completes_when_every_new_worker_is_ready():
    old = [Slot(1, 1, True), Slot(2, 1, True)]
    r = reload.Reload.begin(2, old, graceful_timeout=5.0, now=100.0)
    assert r.old == old and r.deadline == 100.0 + reload.MIN_RELOAD_WAIT
    new = [Slot(1, 2), Slot(2, 2)]
    procs = old + new
    assert r.outcome(procs, 2, now=101.0) is None
    new[0].ready = True
    assert r.outcome(procs, 2, now=101.0) is None
    new[1].ready = True
    assert r.outcome(procs, 2, now=101.0) == reload.COMPLETE
    alive = {s.pid for s in procs} - {old[1].pid}      # old worker 2 died meanwhile
    assert r.to_retire(lambda s: s.pid in alive) == [old[0]]
    assert r.old == []


def test_reload_needs_the_configured_number_of_new_workers():
    r = reload.Reload.begin(2, [Slot(1, 1, True)], graceful_timeout=0, now=0.0)
    new = [Slot(1, 2, True)]
    assert r.outcome(new, 2, now=1.0) is None      # workers was raised to 2 by the reload
    assert r.outcome(new + [Slot(2, 2, True)], 2, now=1.0) == reload.COMPLETE


def test_reload_expires_and_aborts_back_to_the_old_workers():
    old = [Slot(1, 1, True), Slot(2, 1, True)]
    r = reload.Reload.begin(2, old, graceful_timeout=60.0, now=0.0)
    assert r.deadline == 60.0                      # graceful_timeout above the minimum
    new = [Slot(1, 2, True), Slot(2, 2)]
    assert r.outcome(old + new, 2, now=59.0) is None
    assert r.outcome(old + new, 2, now=60.5) == reload.EXPIRED
    assert r.to_kill(old + new) == new
    old[1].retiring = True
    assert r.to_restore(lambda s: True) == [old[0]]
    assert r.is_new(new[0]) and not r.is_new(old[0])


def test_reload_probe_reports_the_error_of_a_broken_loader():
    def broken():
        raise RuntimeError("configure broke half-way")
    assert reload.probe(broken, lambda: None, timeout=30) == "configure broke half-way"
    assert reload.probe(lambda: None, lambda: None, timeout=30) is None


def test_reload_probe_outcome_does_not_depend_on_reaping_the_child(monkeypatch):
    """A SIGCHLD handler reaping every child (the arbiter's; gevent's once a
    gevent.subprocess ran in the process) may collect the probe child first:
    the outcome comes from the pipe, not the exit status."""
    def reaped_elsewhere(pid, options):
        os.waitpid(pid, 0)          # what the other reaper did
        raise ChildProcessError(10, "No child processes")
    monkeypatch.setattr(reload, "_waitpid", reaped_elsewhere)

    def broken():
        raise RuntimeError("configure broke half-way")
    assert reload.probe(lambda: None, lambda: None, timeout=30) is None
    assert reload.probe(broken, lambda: None, timeout=30) == "configure broke half-way"

    def dies():
        os._exit(3)
    assert "without reporting" in reload.probe(dies, lambda: None, timeout=30)


# -- pidfile -------------------------------------------------------------------

def test_pidfile_create_refuse_and_remove(tmp_path):
    path = tmp_path / "kore.pid"
    pf = Pidfile(str(path))
    pf.create()
    assert path.read_text() == "%d\n" % os.getpid()
    # another master finds it held by a running process (this one)
    with pytest.raises(SystemExit, match="names running process %d" % os.getpid()):
        Pidfile(str(path)).create(pid=os.getpid() + 1)
    pf.remove()
    assert not path.exists()


def test_pidfile_stale_is_replaced_and_foreign_is_kept(tmp_path):
    path = tmp_path / "kore.pid"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path.write_text("%d\n" % dead.pid)
    pf = Pidfile(str(path))
    pf.create()
    assert int(path.read_text()) == os.getpid()
    path.write_text("1\n")                      # a newer master took the path
    pf.remove()
    assert path.read_text() == "1\n"
    child = Pidfile(str(path))
    child.create(pid=1)
    child.forget()                              # a forked child never removes it
    child.remove()
    assert path.exists()


# -- Registry.reset / remove -------------------------------------------------

def test_registry_reset_one_source_and_all():
    reg = Registry()
    reg.add(Option("x_size", "int", 1))
    reg.set("x_size", 2, "app")
    reg.set("x_size", 3, "cli")
    assert (reg.get("x_size"), reg.source("x_size")) == (3, "cli")
    reg.reset("x_size", "cli")
    assert (reg.get("x_size"), reg.source("x_size")) == (2, "app")
    reg.reset("x_size")
    assert (reg.get("x_size"), reg.source("x_size")) == (1, "default")
    with pytest.raises(ValueError, match="unknown option source"):
        reg.reset("x_size", "argv")
    reg.remove("x_size")
    with pytest.raises(ConfigError, match="unknown option 'x_size'"):
        reg.get("x_size")


# -- kore.conf -------------------------------------------------------------------

def _conf(tmp_path, text):
    reg = Registry()
    from kore.config import kernel_options
    for opt in kernel_options():
        reg.add(opt)
    path = tmp_path / "kore.conf"
    path.write_text(textwrap.dedent(text))
    return load_conf(str(path), reg), reg


def test_confparse_blocks_settings_and_paths(tmp_path):
    conf, reg = _conf(tmp_path, """
        # a classic Kore configuration
        workers 3
        python_path lib
        server tls {
            bind 127.0.0.1 8443
            unix run/kore.sock
            tls no
        }
        domain * {
            attach tls
            accesslog access.log
            route / index
            route /post handle methods post put
            route ^/re/([a-z]+)$ {
                handler koreapp.re
                methods get
            }
            filemap /static/ webroot
        }
        """)
    assert reg.get("workers") == 3 and reg.source("workers") == "app"
    assert conf.python_path == [str(tmp_path / "lib")]
    assert conf.servers == [("tls", {"bind": [("127.0.0.1", "8443")],
                                     "unix": [str(tmp_path / "run/kore.sock")],
                                     "tls": False})]
    (host, body), = conf.domains
    assert host == "*" and body["attach"] == "tls" and body["accesslog"] == "access.log"
    assert body["routes"] == [
        ("/", {"handler": "index", "methods": None}),
        ("/post", {"handler": "handle", "methods": ["post", "put"]}),
        ("^/re/([a-z]+)$", {"handler": "koreapp.re", "methods": ["get"]})]
    assert body["filemaps"] == [("/static/", str(tmp_path / "webroot"))]


@pytest.mark.parametrize("text, message", [
    ("workers many\n", ":1: bad value 'many' for option 'workers'"),
    ("wrokers 2\n", ":1: unknown option 'wrokers' (did you mean 'workers'?)"),
    ("server a {\n  bind 1.2.3.4\n}\n", ":2: unknown server setting 'bind'"),
    ("domain * {\n  route /\n}\n", ":2: unknown domain setting 'route'"),
    ("}\n", ":1: '}' without an open block"),
    ("domain * {\n", "block 'domain *' is not closed"),
    ("route / x {\n}\n", ":1: unexpected block 'route / x'"),
    ("workers\n", ":1: setting 'workers' has no value"),
    ('root "unterminated\n', ":1: No closing quotation"),
])
def test_confparse_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        _conf(tmp_path, text)
    assert str(tmp_path / "kore.conf") in str(info.value)
    assert message in str(info.value)


# -- start-up signal hold ------------------------------------------------------

def test_korectl_holds_the_same_signals_as_the_kernel():
    assert korectl.STARTUP == signals.STARTUP


HOLD_SCRIPT = """
import os, signal, sys
from kore import signals
held = signals.hold()
os.kill(os.getpid(), signal.SIGTERM)
os.kill(os.getpid(), signal.SIGHUP)
print("alive", signals.take_held() == [signal.SIGTERM, signal.SIGHUP], flush=True)
os.kill(os.getpid(), signal.SIGTERM)
signals.release_held()          # delivered again with the default action
print("not reached", flush=True)
"""


def test_held_signals_are_recorded_then_released_with_their_default_action():
    r = subprocess.run([sys.executable, "-c", HOLD_SCRIPT], capture_output=True,
                       text=True, timeout=60)
    assert r.stdout.split() == ["alive", "True"], r.stderr
    assert r.returncode == -signal.SIGTERM
