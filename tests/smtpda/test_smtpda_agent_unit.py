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


def test_option_defaults_are_skitai_and_postfix():
    from kore_smtpda import settings
    defaults = {o.name: o.default for o in settings.options()}
    assert defaults["smtpda_max_retry"] == 10 and defaults["smtpda_keep_days"] == 3
    assert defaults["smtpda_backoff_min"] == 300 and defaults["smtpda_backoff_max"] == 4000
    assert defaults["smtpda_max_lifetime"] == 5 * 86400
    assert defaults["smtpda_tls_verify"] is True
    assert defaults["smtpda_auth_without_tls"] is False


def test_only_complete_files_are_picked_up(tmp_path):
    """tmp/ (files being written) and names without .msg are never queued;
    tmp/ files a dead writer left are removed after an hour, newer ones kept."""
    a = make_agent(tmp_path)
    done = put(a.root, "incoming")
    writing = os.path.join(a.root, "tmp", spool.new_name() + ".1a2b3c4d")
    with open(writing, "wb") as f:
        f.write(b"KORE-SMTPDA 1\n{")
    stale = os.path.join(a.root, "tmp", spool.new_name() + ".5e6f7a8b")
    with open(stale, "wb") as f:
        f.write(b"KORE-SMTPDA 1\n")
    past = time.time() - agent.STALE_TMP - 60
    os.utime(stale, (past, past))
    with open(os.path.join(a.root, "incoming", "notes.txt"), "wb") as f:
        f.write(b"x")
    a.scan(first=True)
    a._scan_incoming()
    assert set(a.known) == {done}
    a.maintain()
    assert os.listdir(os.path.join(a.root, "tmp")) == [os.path.basename(writing)]


@pytest.mark.parametrize("field,value", [
    ("rcpt", [1]), ("rcpt", ["b@example.com\r\nRCPT TO:<x@y>"]), ("rcpt", ["nobody"]),
    ("sender", "a@example.com\r\nRSET"), ("server", {"host": "h"}),
    ("server", {"host": "h", "port": 0}), ("next_attempt", "soon"), ("errors", {})])
def test_unusable_envelopes_are_set_aside(tmp_path, field, value):
    a = make_agent(tmp_path)
    name = put(a.root, "incoming", **{field: value})
    with pytest.raises(spool.CorruptFile):
        spool.read(os.path.join(a.root, "incoming", name))
    a.deliver(name, "incoming")
    assert spool.names(a.root, "corrupt") == [name]
    assert spool.names(a.root, "incoming") == []
    assert a.status.counters["corrupt"] == 1


def test_an_unexpected_error_is_an_attempt_not_an_endless_retry(tmp_path, monkeypatch):
    a = make_agent(tmp_path, smtpda_max_retry=2)
    a.servers["default"] = {"name": "default", "host": "127.0.0.1", "port": 1,
                            "ssl": False, "user": None}

    def boom(server, env, message):
        raise RuntimeError("bug")
    monkeypatch.setattr(a, "_transaction", boom)
    name = put(a.root, "incoming")
    a.inflight.add(name)
    a._deliver_guarded(name, "incoming")
    env = spool.read_envelope(os.path.join(a.root, "deferred", name))
    assert env["attempts"] == 1
    assert "internal error: RuntimeError: bug" in str(env["errors"])
    assert env["next_attempt"] >= time.time() + 250 and name not in a.inflight
    a._deliver_guarded(name, "deferred")
    assert spool.names(a.root, "deferred") == []
    env = spool.read_envelope(os.path.join(a.root, "undeliverable", name))
    assert "max_retry (2) reached" in env["bounced"][0]["reply"]


def test_status_is_exported_as_metrics(tmp_path):
    from kore_metrics import exposition
    from kore_metrics.store import Samples
    from kore_smtpda import status
    a = make_agent(tmp_path)
    put(a.root, "incoming")
    put(a.root, "deferred")
    put(a.root, "undeliverable")
    a.status.add("delivered", 7)
    a.status.add("deferred", 3)
    a.status.add("failed")
    a.status.save()
    s = Samples()
    status.export(s, status.read(a.root))
    text = exposition.render(s.families, s.values)
    lines = set(text.splitlines())
    for line in ("kore_smtpda_delivered_total 7", "kore_smtpda_deferred_total 3",
                 "kore_smtpda_failed_total 1", "kore_smtpda_corrupt_total 0",
                 "kore_smtpda_spool_depth 2", 'kore_smtpda_spool_messages{queue="deferred"} 1',
                 'kore_smtpda_spool_messages{queue="undeliverable"} 1',
                 "kore_smtpda_agent_up 0", "# TYPE kore_smtpda_delivered_total counter",
                 "# TYPE kore_smtpda_spool_depth gauge"):
        assert line in lines, text
