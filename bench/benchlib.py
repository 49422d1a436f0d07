"""Helpers shared by the benchmarks: ports, process CPU and memory, stopping
a server's process group.  Each benchmark script puts bench/ on sys.path and
imports this module."""

import os
import signal
import socket
import subprocess
import time

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0, host="127.0.0.1"):
    """True once ``host:port`` accepts a connection, False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def _stat_fields(pid):
    with open("/proc/%s/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid):
    """User + system CPU seconds of one process."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICK


def group_cpu(pgid):
    """User + system CPU seconds of every live process in group ``pgid``."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        if int(fields[2]) == pgid:           # field 5: pgrp
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def tree_cpu(root):
    """User + system CPU seconds of ``root`` and every live descendant
    (found through the parent pids in /proc), threads included."""
    parent, ticks = {}, {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        parent[int(pid)] = int(fields[1])      # field 4: ppid
        ticks[int(pid)] = int(fields[11]) + int(fields[12])
    children = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total / TICK


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def worker_pid(master):
    """The pid of the first child of ``master`` (a one-worker korectl)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)],
                         capture_output=True, text=True).stdout.split()
    return int(out[0])


def stop_group(proc, timeout=15.0):
    """TERM the process group led by ``proc``, KILL it if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


def venv_versions(venvs, names):
    """One line per server: the Python and distribution versions of the venv
    it runs from.  ``venvs`` maps a name to (venv directory, distributions)."""
    lines = []
    for name in names:
        venv, dists = venvs[name]
        py = os.path.join(venv, "bin", "python")
        if not os.path.exists(py):
            lines.append("%-16s not installed (%s)" % (name, venv))
            continue
        code = ("import importlib.metadata as m, platform; print('python', "
                "platform.python_version(), ' '.join('%%s %%s' %% (d, m.version(d)) "
                "for d in %r))" % (tuple(dists),))
        r = subprocess.run([py, "-c", code], capture_output=True, text=True)
        lines.append("%-16s %s" % (name, (r.stdout or r.stderr).strip().splitlines()[-1]))
    return lines
