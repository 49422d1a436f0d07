"""Sandboxed workers (kore.seccomp): the default policy serves HTTP,
websocket, pgsql, curl and kore.proc; a denied syscall kills the worker,
which is logged with the syscall and respawned; seccomp_tracing logs and
lets it run; koreapp.seccomp() adds rules with Kore's method names."""

import errno
import os
import re
import sys

import httpx
import pytest

from kore_testing import KoreServer, wait_for

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="seccomp is Linux only")]

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "pgsql"))

APP = r'''
import ctypes, errno, os
import kore

if os.environ.get("SBT_TRACING"):
    kore.config.seccomp_tracing = "yes"
if os.environ.get("SBT_DSN"):
    kore.dbsetup("db", os.environ["SBT_DSN"])

libc = ctypes.CDLL(None, use_errno=True)

class App:
    def seccomp(self, seccomp):
        seccomp.allow("personality")                    # not in the default policy
        seccomp.deny("getpriority", errno=errno.EPERM)  # replaces the default allow

koreapp = App()

@kore.route("/", methods=["get"])
def index(req):
    req.response(200, b"pid=%d" % os.getpid())

@kore.route("/ptrace", methods=["get"])
def do_ptrace(req):
    # PTRACE_ATTACH to a pid that cannot exist: ESRCH when allowed
    rc = libc.ptrace(16, 0x7ffffff0, None, None)
    req.response(200, b"ptrace=%d errno=%d" % (rc, ctypes.get_errno()))

@kore.route("/added", methods=["get"])
def added(req):
    persona = libc.personality(0xffffffff)              # query only
    try:
        os.getpriority(os.PRIO_PROCESS, 0)
        prio = "allowed"
    except OSError as exc:
        prio = errno.errorcode[exc.errno]
    req.response(200, ("personality=%d getpriority=%s" % (persona, prio)).encode())

@kore.route("/proc", methods=["get"])
async def proc(req):
    p = kore.proc("echo sandboxed")
    out = b""
    while True:
        chunk = await p.recv(1024)
        if chunk is None:
            break
        out += chunk
    rc = await p.reap()
    req.response(200, b"%s rc=%d" % (out.strip(), rc))

@kore.route("/curl", methods=["get"])
async def curl(req):
    client = kore.httpclient("http://127.0.0.1:%s/" % req.host.rsplit(":", 1)[1])
    status, body = await client.get()
    req.response(200, b"%d %s" % (status, body))

@kore.route("/db", methods=["get"])
async def db(req):
    rows = await kore.dbquery("db", "SELECT 6 * 7 AS answer")
    req.response(200, ("answer=%s" % rows[0]["answer"]).encode())

def onconnect(c):
    pass

def onmsg(c, op, data):
    c.websocket_send(op, data)

def ondisconnect(c):
    pass

@kore.route("/ws", methods=["get"])
def ws(req):
    req.websocket_handshake(onconnect, onmsg, ondisconnect)
'''


@pytest.fixture(scope="module")
def pg_dsn():
    try:
        from pgcluster import Cluster, find_bindir
    except ImportError:
        yield None
        return
    if find_bindir() is None:
        yield None
        return
    cluster = Cluster.create()
    try:
        yield cluster.dsn
    finally:
        cluster.destroy()


def _start(tmp, env):
    srv = KoreServer(tmp, APP, env=env)
    assert srv.wait_log("seccomp filter loaded", timeout=30), srv.log()
    return srv


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory, pg_dsn):
    env = {"SBT_DSN": pg_dsn} if pg_dsn else {}
    srv = _start(tmp_path_factory.mktemp("sandbox"), env)
    yield srv
    srv.stop()
    srv.cleanup()


def _get(srv, path):
    return httpx.get(srv.url + path, timeout=20)


def test_default_policy_serves_http_websocket_curl_proc(sandboxed):
    r = _get(sandboxed, "/")
    assert r.status_code == 200 and r.text.startswith("pid=")
    assert _get(sandboxed, "/proc").text == "sandboxed rc=0"
    assert _get(sandboxed, "/curl").text.startswith("200 pid=")

    import websockets.sync.client as wsc
    with wsc.connect("ws://127.0.0.1:%d/ws" % sandboxed.port, open_timeout=20) as conn:
        conn.send("under seccomp")
        assert conn.recv(timeout=20) == "under seccomp"
        conn.send(b"\x00\x01binary")
        assert conn.recv(timeout=20) == b"\x00\x01binary"
    assert "seccomp violation" not in sandboxed.log()


def test_default_policy_serves_pgsql(sandboxed, pg_dsn):
    if pg_dsn is None:
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh --tests installs it)")
    assert _get(sandboxed, "/db").text == "answer=42"
    assert "seccomp violation" not in sandboxed.log()


def test_app_rules_with_kores_method_names(sandboxed):
    r = _get(sandboxed, "/added")
    persona, prio = re.match(r"personality=(-?\d+) getpriority=(\w+)", r.text).groups()
    assert int(persona) >= 0 and prio == "EPERM"
    assert "seccomp violation" not in sandboxed.log()


def test_denied_syscall_kills_the_worker_which_is_respawned(sandboxed):
    before = _get(sandboxed, "/").text
    with pytest.raises(httpx.HTTPError):
        _get(sandboxed, "/ptrace")     # the worker dies before answering
    assert wait_for(lambda: "restarting it" in sandboxed.log(), timeout=30), sandboxed.log()
    log = sandboxed.log()
    pid = int(before.split("=")[1])
    assert re.search(r"seccomp violation, wrk 1 pid=%d, syscall=\d+:ptrace, killing it"
                     % pid, log), log
    assert re.search(r"worker 1 \(pid %d\) killed by signal 9 \(sandbox violation, "
                     r"syscall=\d+:ptrace\), restarting it" % pid, log), log
    # the new worker loaded its filter and is ready (a worker reports ready
    # after its filter is in place); its line may already be in ``log``
    ready = re.compile(r"worker 1 \(pid (?!%d\))\d+\) ready" % pid)
    assert wait_for(lambda: ready.search(sandboxed.log()), timeout=30), sandboxed.log()
    after = _get(sandboxed, "/")
    assert after.status_code == 200 and after.text != before      # a new worker serves


def test_tracing_logs_the_syscall_and_lets_it_run(tmp_path):
    srv = _start(tmp_path, {"SBT_TRACING": "1"})
    try:
        pid = _get(srv, "/").text.split("=")[1]
        r = _get(srv, "/ptrace")
        assert r.text == "ptrace=-1 errno=%d" % errno.ESRCH      # it really ran
        log = srv.log()
        assert re.search(r"seccomp violation, wrk 1 pid=%s, syscall=\d+:ptrace\n" % pid, log), log
        assert "tracing" in log and "killing it" not in log
        assert _get(srv, "/").text == "pid=" + pid                # same worker
    finally:
        srv.stop()
        srv.cleanup()


# -- kore.seccomp in-process --------------------------------------------------

def test_seccomp_object_validates_like_kore():
    import kore
    s = kore.seccomp()
    assert kore.pyseccomp is kore.seccomp
    with pytest.raises(RuntimeError, match="system call 'no_such_call' does not exist"):
        s.allow("no_such_call")
    with pytest.raises(ValueError, match="argument index"):
        s.allow_arg("socket", 6, 2)
    with pytest.raises(TypeError, match="only errno"):
        s.deny("socket", errnum=1)
    with pytest.raises(NotImplementedError, match="libseccomp"):
        s.bpf_stmt(0x06, 0x7FFF0000)
    s.allow_arg("socket", 0, 2)
    s.allow_flag("clone", 0, 0x10000)
    s.allow_mask("mmap", 2, 0x3)
    s.deny("ioctl")
    s.deny_arg("socket", 0, 17, errno=errno.EPERM)
    assert s.rules["socket"] == [("allow", [(0, "EQ", 2, 0)]),
                                 (("errno", errno.EPERM), [(0, "EQ", 17, 0)])]
    assert s.rules["clone"] == [("allow", [(0, "MASKED_EQ", 0x10000, 0x10000)])]
    assert s.rules["mmap"] == [("allow", [(2, "MASKED_EQ", 0xFFFFFFFFFFFFFFFC, 0)])]
    assert s.rules["ioctl"] == [(("errno", errno.EACCES), [])]


def test_app_rules_replace_the_defaults_of_their_syscalls():
    from kore import sandbox

    class FakeApp:
        def call(self, name, *args):
            assert name == "seccomp"
            args[0].deny("socket", errno=errno.EPERM)

    rules = sandbox.build(FakeApp(), worker=None)
    assert rules["socket"] == [(("errno", errno.EPERM), [])]
    assert rules["read"] == "allow" and "ptrace" not in rules


def test_sandbox_example_answers_its_docstring_urls(tmp_path):
    from kore_testing import ROOT
    app = os.path.join(ROOT, "examples", "sandbox", "app.py")
    srv = KoreServer(tmp_path, app, cwd=os.path.dirname(app))
    try:
        assert srv.wait_log("seccomp filter loaded", timeout=30)
        assert "runs sandboxed" in _get(srv, "/").text
        assert _get(srv, "/priority").text == "getpriority denied with EPERM\n"
        with pytest.raises(httpx.HTTPError):
            _get(srv, "/forbidden")
        assert wait_for(lambda: "killed by signal 9 (sandbox violation, syscall=" in srv.log()
                        and srv.log().count(" ready") >= 2, timeout=30), srv.log()
        assert _get(srv, "/").status_code == 200
    finally:
        srv.stop()
        srv.cleanup()
