"""The agent's bookkeeping, in-process: backoff, expiry, crash leftovers."""

import os
import time

import pytest

from kore_smtpda import agent, spool


def make_agent(tmp_path, **over):
    cfg = {"spool": spool.ensure(str(tmp_path / "spool")), "servers": {},
           "smtpda_concurrency": 2, "smtpda_cafile": "", "smtpda_tls_verify": True,
           "smtpda_helo_name": "test", "smtpda_poll_interval": 1.0,
           "smtpda_max_retry": 10, "smtpda_keep_days": 3.0, "smtpda_backoff_min": 300.0,
           "smtpda_backoff_max": 4000.0, "smtpda_max_lifetime": 5 * 86400.0,
           "smtpda_timeout": 10.0}
    cfg.update(over)
    return agent.Agent(cfg)


def put(root, queue, name=None, **env):
    name = name or spool.new_name()
    e = {"id": name, "message_id": "<%s@example.com>" % name, "sender": "a@example.com",
         "rcpt": ["b@example.com"], "server": "default", "created": time.time(),
         "attempts": 0, "next_attempt": 0}
    e.update(env)
    spool.write_atomic(root, queue, name, spool.encode(e, b"Subject: x\r\n\r\nhi\r\n"))
    return name


def test_backoff_doubles_between_min_and_max(tmp_path):
    a = make_agent(tmp_path)
    name = put(a.root, "incoming")
    queue = "incoming"
    delays = []
    for _ in range(7):
        env, msg = spool.read(os.path.join(a.root, queue, name))
        before = time.time()
        a._failed(name, queue, env, msg, {"b@example.com": "451 4.3.0 later"}, {})
        queue = "deferred"
        env = spool.read_envelope(os.path.join(a.root, queue, name))
        delays.append(round(env["next_attempt"] - before, -1))
    assert delays == [300, 600, 1200, 2400, 4000, 4000, 4000]
    assert os.listdir(os.path.join(a.root, "incoming")) == []
    assert env["attempts"] == 7 and len(env["errors"]) == 5
    assert a.status.counters["deferred"] == 7


def test_max_retry_moves_to_undeliverable(tmp_path):
    a = make_agent(tmp_path, smtpda_max_retry=2)
    name = put(a.root, "deferred", attempts=1)
    env, msg = spool.read(os.path.join(a.root, "deferred", name))
    a._failed(name, "deferred", env, msg, {"b@example.com": "451 later"}, {})
    assert spool.names(a.root, "deferred") == []
    env = spool.read_envelope(os.path.join(a.root, "undeliverable", name))
    assert env["bounced"][0]["reply"] == "max_retry (2) reached; last reply: 451 later"
    assert a.status.counters["failed"] == 1


def test_first_scan_resolves_crash_leftovers(tmp_path):
    a = make_agent(tmp_path)
    both = put(a.root, "incoming")
    put(a.root, "deferred", name=both, attempts=1, next_attempt=time.time() + 100)
    bounced = put(a.root, "deferred")
    put(a.root, "undeliverable", name=bounced)
    fresh = put(a.root, "incoming")
    a.scan(first=True)
    assert spool.names(a.root, "incoming") == [fresh]
    assert spool.names(a.root, "deferred") == [both]
    assert set(a.known) == {both, fresh}
    assert a.known[both][1] > time.time() + 50           # its schedule was kept


def test_keep_days_removes_old_undeliverable_only(tmp_path):
    a = make_agent(tmp_path, smtpda_keep_days=1.0)
    old = put(a.root, "undeliverable")
    new = put(a.root, "undeliverable")
    past = time.time() - 86400 - 60
    os.utime(os.path.join(a.root, "undeliverable", old), (past, past))
    a.maintain()
    assert spool.names(a.root, "undeliverable") == [new]


@pytest.mark.parametrize("ref,expected", [
    ("default", None), ({"host": "h", "port": 25, "ssl": False}, "h:25"), (["x"], None)])
def test_server_references(tmp_path, ref, expected):
    a = make_agent(tmp_path)
    s = a._server(ref)
    assert (s and s["name"]) == expected if expected else s is None
