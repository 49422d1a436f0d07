"""End to end: korectl + the delivery agent + an aiosmtpd sink process."""

import email
import email.policy
import json
import os
import signal
import statistics
import subprocess
import time
import urllib.request

import pytest

from kore_testing import KORECTL, wait_for
from smtpda_helpers import metrics_port, read_env, spool_files, wait_spool

pytestmark = pytest.mark.timeout(120)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def test_send_returns_at_once_while_the_server_is_slow(mail_server, sinks, tmp_path):
    """send() < 50 ms while the sink takes 5 s per message; messages go out
    concurrently; the sink parses a complete, correct message."""
    sink = sinks()
    sink.control(delay=5)
    img = tmp_path / "logo.png"
    img.write_bytes(PNG)
    att = tmp_path / "notes.txt"
    att.write_bytes(b"line one\nline two\n" * 50)
    ms = mail_server("127.0.0.1:%d" % sink.port)
    sent = []
    start = time.monotonic()
    for i in range(4):
        r = ms.send(subject="Grüße Nr. %d" % i, to=["Zoë Ω <zoe@example.com>"],
                    cc=["cc@example.com"], bcc=["secret@example.com"],
                    **{"from": "Jürgen <jm@example.com>"},
                    contents=[["plain text", "text/plain"],
                              ["<p>see <img src='cid:logo'></p>", "text/html"]],
                    attachments=[[str(img), None, "logo"], [str(att), "Notiz.txt", None]])
        sent.append(r)
    assert time.monotonic() - start < 5.0          # one 5 s transaction would exceed it
    # the spec's 50 ms for the typical send(); none anywhere near the 5 s
    # the server takes (a loaded test machine may deschedule one)
    assert statistics.median(r["ms"] for r in sent) < 50, sent
    assert max(r["ms"] for r in sent) < 1000, sent
    msgs = sink.wait_messages(4, timeout=40)
    # four 5-second transactions at once (concurrency 4), not one after
    # another (which takes 20 s): every DATA arrived before the first was
    # answered
    assert time.monotonic() - start < 18
    assert wait_for(lambda: len(sink.events()) >= 8, 10), sink.events()
    order = [text.split()[0] for _, text in sink.timed_events()]
    assert order[:4] == ["data"] * 4 and order[4:] == ["accepted"] * 4, order
    by_id = {m["Message-ID"]: (meta, m) for meta, m, raw in msgs}
    assert set(by_id) == {r["message_id"] for r in sent}
    meta, m = by_id[sent[0]["message_id"]]
    assert meta["mail_from"] == "jm@example.com"
    assert sorted(meta["rcpt_tos"]) == ["cc@example.com", "secret@example.com",
                                        "zoe@example.com"]
    assert meta["tls"] is False and meta["auth"] is None
    raw = [raw for _, mm, raw in msgs if mm["Message-ID"] == sent[0]["message_id"]][0]
    assert b"secret@example.com" not in raw and b"\nBcc:" not in raw
    assert "=?utf-8?" in m["Subject"] and "=?utf-8?" in m["To"]
    from email.header import decode_header, make_header
    assert str(make_header(decode_header(m["Subject"]))) == "Grüße Nr. 0"
    assert "Zoë Ω" in str(make_header(decode_header(m["To"])))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"].addresses[0].display_name == "Jürgen"
    assert "=?utf-8?" in m["From"]
    assert m["Cc"] == "cc@example.com"
    from email.utils import parsedate_to_datetime
    sent_at = parsedate_to_datetime(m["Date"]).timestamp()
    assert abs(sent_at - time.time()) < 120 and parsedate_to_datetime(m["Date"]).tzinfo
    assert m["Message-ID"].startswith("<") and m["Message-ID"].endswith("@example.com>")
    assert m.get_content_type() == "multipart/mixed"
    alt, note = m.get_payload()
    plain, related = alt.get_payload()
    assert related.get_content_type() == "multipart/related"
    html, image = related.get_payload()
    assert image["Content-ID"] == "<logo>" and image.get_payload(decode=True) == PNG
    assert image["Content-Transfer-Encoding"] == "base64"
    assert note.get_filename() == "Notiz.txt"
    assert note["Content-Transfer-Encoding"] == "base64"
    assert note.get_payload(decode=True) == att.read_bytes()
    wait_spool(ms.spool, "incoming", 0)
    assert spool_files(ms.spool, "deferred") == []


def test_agent_killed_mid_data_delivers_after_restart(mail_server, sinks):
    sink = sinks()
    sink.control(delay=60)                      # hold the DATA reply
    ms = mail_server("127.0.0.1:%d" % sink.port)
    pid = ms.wait_agent()
    mid = ms.send(subject="survives")["message_id"]
    assert wait_for(lambda: "data %s" % mid in sink.events(), 20), sink.events()
    os.kill(pid, signal.SIGKILL)
    sink.control()                              # the next attempt is answered at once
    new = ms.wait_agent(2, timeout=30)
    assert new != pid
    assert ms.srv.wait_log("smtpda agent (pid %d)" % pid, 10), ms.srv.log()
    msgs = sink.wait_messages(1, timeout=30)
    assert {m["Message-ID"] for _, m, _ in msgs} == {mid}
    wait_spool(ms.spool, "incoming", 0)
    assert spool_files(ms.spool, "corrupt") == []


def test_server_down_then_back(mail_server, sinks, tmp_path):
    sink = sinks()
    port = sink.port
    sink.stop()
    ms = mail_server("127.0.0.1:%d" % port, env={"KORE_SMTPDA_BACKOFF_MIN": "0.5",
                                                 "KORE_SMTPDA_BACKOFF_MAX": "1"})
    mid = ms.send()["message_id"]
    wait_spool(ms.spool, "deferred", 1)
    assert wait_for(lambda: read_env(ms.spool, "deferred",
                                     spool_files(ms.spool, "deferred")[0])["attempts"] >= 2,
                    20)
    env = read_env(ms.spool, "deferred", spool_files(ms.spool, "deferred")[0])
    assert "Connection refused" in json.dumps(env["errors"])
    sink = sinks(port=port)
    msgs = sink.wait_messages(1, timeout=20)
    assert msgs[0][1]["Message-ID"] == mid
    wait_spool(ms.spool, "deferred", 0)


def test_4xx_is_retried_5xx_is_not(mail_server, sinks):
    sink = sinks()
    sink.control(data_reply="451 4.3.0 try again later")
    ms = mail_server("127.0.0.1:%d" % sink.port, env={"KORE_SMTPDA_BACKOFF_MIN": "0.5",
                                                      "KORE_SMTPDA_BACKOFF_MAX": "1"},
                     args=["--metrics-bind", "127.0.0.1:0"])
    mid = ms.send(subject="retry me")["message_id"]
    wait_spool(ms.spool, "deferred", 1)
    env = read_env(ms.spool, "deferred", spool_files(ms.spool, "deferred")[0])
    assert "451 4.3.0 try again later" in json.dumps(env["errors"])
    sink.control()
    assert sink.wait_messages(1)[0][1]["Message-ID"] == mid
    wait_spool(ms.spool, "deferred", 0)

    # 550 to DATA: undeliverable after one attempt, the reply kept
    sink.control(data_reply="550 5.7.1 message refused")
    mid = ms.send(subject="bounce me")["message_id"]
    wait_spool(ms.spool, "undeliverable", 1)
    name = spool_files(ms.spool, "undeliverable")[0]
    env = read_env(ms.spool, "undeliverable", name)
    assert env["message_id"] == mid and env["attempts"] == 1
    assert env["bounced"] == [{"rcpt": "rcpt@example.com",
                               "reply": "550 5.7.1 message refused"}]
    assert spool_files(ms.spool, "deferred") == []

    # 553 to MAIL FROM: undeliverable too
    sink.control(mail_reply="553 5.1.8 sender address rejected")
    mid = ms.send(subject="bad sender")["message_id"]
    wait_spool(ms.spool, "undeliverable", 2)
    env = [read_env(ms.spool, "undeliverable", n)
           for n in spool_files(ms.spool, "undeliverable")]
    env = [e for e in env if e["message_id"] == mid][0]
    assert env["attempts"] == 1 and env["bounced"] == [
        {"rcpt": "rcpt@example.com", "reply": "553 5.1.8 sender address rejected"}]

    # one recipient refused with 550, one with 450, one accepted
    sink.control(rcpt_replies={"gone@example.com": "550 5.1.1 no such user",
                               "busy@example.com": "450 4.2.1 mailbox busy"})
    mid = ms.send(to=["ok@example.com", "gone@example.com", "busy@example.com"])["message_id"]
    msgs = sink.wait_messages(2)
    assert msgs[1][0]["rcpt_tos"] == ["ok@example.com"]
    wait_spool(ms.spool, "deferred", 1)
    env = read_env(ms.spool, "deferred", spool_files(ms.spool, "deferred")[0])
    assert env["message_id"] == mid and env["rcpt"] == ["busy@example.com"]
    assert env["bounced"] == [{"rcpt": "gone@example.com", "reply": "550 5.1.1 no such user"}]
    sink.control()
    msgs = sink.wait_messages(3)
    assert msgs[2][0]["rcpt_tos"] == ["busy@example.com"]
    assert msgs[2][1]["Message-ID"] == mid
    wait_spool(ms.spool, "deferred", 0)

    out = subprocess.run([KORECTL, "smtpda", "status", "--json", "--bind", "127.0.0.1:1",
                          ms.srv.app], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, KORE_SMTPDA_SPOOL=ms.spool,
                                  SMTP="127.0.0.1:%d" % sink.port), cwd=str(ms.srv.tmp_path))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["agent"] is not None
    assert doc["counters"]["delivered"] == 3
    assert doc["counters"]["deferred"] >= 2
    assert doc["counters"]["failed"] == 2
    assert doc["queue"] == {"depth": 0, "incoming": 0, "deferred": 0, "undeliverable": 2,
                            "corrupt": 0}

    # the same numbers on kore-plugin-metrics' /metrics (read in the master)
    port = metrics_port(ms.srv)
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        lines = set(r.read().decode().splitlines())
    for line in ("kore_smtpda_delivered_total 3", "kore_smtpda_failed_total 2",
                 "kore_smtpda_deferred_total %d" % doc["counters"]["deferred"],
                 "kore_smtpda_spool_depth 0", "kore_smtpda_agent_up 1",
                 'kore_smtpda_spool_messages{queue="undeliverable"} 2',
                 "# TYPE kore_smtpda_delivered_total counter"):
        assert line in lines, sorted(l for l in lines if "smtpda" in l)


def test_connection_dropped_mid_data_is_retried(mail_server, sinks):
    sink = sinks()
    sink.control(drop=True)
    ms = mail_server("127.0.0.1:%d" % sink.port, env={"KORE_SMTPDA_BACKOFF_MIN": "0.3",
                                                      "KORE_SMTPDA_BACKOFF_MAX": "0.6"})
    mid = ms.send()["message_id"]
    wait_spool(ms.spool, "deferred", 1)
    sink.control()
    assert sink.wait_messages(1)[0][1]["Message-ID"] == mid


def test_max_retry_then_kept_keep_days(mail_server, sinks):
    """kore.enable_smtpda(..., max_retry=3, keep_days=0.00005): three attempts,
    each after a backoff doubling from smtpda_backoff_min, then
    undeliverable, then removed keep_days (4.3 s) later."""
    sink = sinks()
    sink.control(data_reply="421 4.3.2 closing")
    ms = mail_server("127.0.0.1:%d" % sink.port, env={
        "KORE_SMTPDA_BACKOFF_MIN": "0.5", "KORE_SMTPDA_BACKOFF_MAX": "1",
        "SMTP_MAX_RETRY": "3", "SMTP_KEEP_DAYS": "0.00005"})
    mid = ms.send()["message_id"]
    wait_spool(ms.spool, "undeliverable", 1, timeout=20)
    name = spool_files(ms.spool, "undeliverable")[0]
    env = read_env(ms.spool, "undeliverable", name)
    assert env["message_id"] == mid and env["attempts"] == 3
    assert "max_retry (3) reached" in env["bounced"][0]["reply"]
    assert "421 4.3.2 closing" in env["bounced"][0]["reply"]
    attempts = [t for t, text in sink.timed_events() if text.startswith("data")]
    assert len(attempts) == 3
    # the agent waited the backoff (0.5 s, then 1 s) between the attempts
    assert attempts[1] - attempts[0] >= 0.5 * 0.98, attempts
    assert attempts[2] - attempts[1] >= 1.0 * 0.98, attempts
    wait_spool(ms.spool, "undeliverable", 0, timeout=20)
    assert ms.srv.wait_log("removed undeliverable %s" % name, 5)


def test_max_lifetime(mail_server, sinks):
    sink = sinks()
    sink.control(data_reply="451 4.3.0 later")
    ms = mail_server("127.0.0.1:%d" % sink.port, env={
        "KORE_SMTPDA_BACKOFF_MIN": "1", "KORE_SMTPDA_MAX_LIFETIME": "0.5"})
    ms.send()
    wait_spool(ms.spool, "undeliverable", 1, timeout=20)
    env = read_env(ms.spool, "undeliverable", spool_files(ms.spool, "undeliverable")[0])
    assert "in the spool longer than 0.5 s" in env["bounced"][0]["reply"]


def test_corrupt_file_is_set_aside(mail_server, sinks):
    sink = sinks()
    ms = mail_server("127.0.0.1:%d" % sink.port)
    good = ms.send()["message_id"]
    sink.wait_messages(1)
    inc = os.path.join(ms.spool, "incoming")
    with open(os.path.join(inc, "0000000000000001-aaaaaaaaaaaa.msg"), "wb") as f:
        f.write(b"KORE-SMTPDA 1\n{\"id\": \"x\"")           # truncated
    with open(os.path.join(inc, "0000000000000002-bbbbbbbbbbbb.msg"), "wb") as f:
        f.write(b"random junk\n")
    wait_spool(ms.spool, "corrupt", 2, timeout=20)
    wait_spool(ms.spool, "incoming", 0)
    assert ms.srv.wait_log("corrupt spool file 0000000000000001-aaaaaaaaaaaa.msg moved to "
                           "corrupt/", 5)
    mid = ms.send()["message_id"]                        # the queue keeps moving
    assert {m["Message-ID"] for _, m, _ in sink.wait_messages(2)} == {good, mid}


def test_restart_of_kore_keeps_the_spool(mail_server, sinks):
    sink = sinks()
    port = sink.port
    sink.stop()
    backoff = {"KORE_SMTPDA_BACKOFF_MIN": "3", "KORE_SMTPDA_BACKOFF_MAX": "3"}
    ms = mail_server("127.0.0.1:%d" % port, env=backoff)
    mids = {ms.send(subject="n%d" % i)["message_id"] for i in range(3)}
    wait_spool(ms.spool, "deferred", 3)
    assert ms.srv.stop() == 0
    assert "did not stop" not in ms.srv.log()
    assert ms.srv.wait_log("smtpda agent %d stopped" % ms.agent_pids()[0], 1)
    assert len(spool_files(ms.spool, "deferred")) == 3
    out = subprocess.run([KORECTL, "smtpda", "list", "--bind", "127.0.0.1:1", ms.srv.app],
                         capture_output=True, text=True, timeout=30, cwd=str(ms.srv.tmp_path),
                         env=dict(os.environ, KORE_SMTPDA_SPOOL=ms.spool,
                                  SMTP="127.0.0.1:%d" % port))
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and len(lines) == 3, out
    assert all(l.startswith("deferred") and "Connection refused" in l for l in lines), lines
    assert {l.split()[2] for l in lines} == mids
    sink = sinks(port=port)
    ms2 = mail_server("127.0.0.1:%d" % port, spool=ms.spool, env=backoff)
    msgs = sink.wait_messages(3, timeout=30)
    assert {m["Message-ID"] for _, m, _ in msgs} == mids
    wait_spool(ms2.spool, "deferred", 0)


def test_flush_makes_deferred_mail_due(mail_server, sinks, korectl):
    sink = sinks()
    sink.control(data_reply="452 4.3.1 full")
    ms = mail_server("127.0.0.1:%d" % sink.port, env={"KORE_SMTPDA_BACKOFF_MIN": "1000",
                                                      "KORE_SMTPDA_BACKOFF_MAX": "1000"})
    mid = ms.send()["message_id"]
    wait_spool(ms.spool, "deferred", 1)
    sink.control()
    out = korectl("smtpda", "flush", "--bind", "127.0.0.1:1", ms.srv.app,
                  env={"KORE_SMTPDA_SPOOL": ms.spool, "SMTP": "127.0.0.1:%d" % sink.port},
                  cwd=str(ms.srv.tmp_path))
    assert out.returncode == 0, out.stderr
    assert "flush requested: 1 deferred" in out.stdout
    assert sink.wait_messages(1, timeout=20)[0][1]["Message-ID"] == mid
    out = korectl("smtpda", "list", "--bind", "127.0.0.1:1", ms.srv.app,
                  env={"KORE_SMTPDA_SPOOL": ms.spool, "SMTP": "127.0.0.1:%d" % sink.port},
                  cwd=str(ms.srv.tmp_path))
    assert out.returncode == 0 and out.stdout == "", (out.stdout, out.stderr)


def prespool(root, port, n):
    """Spool n messages with the plugin used as a library (no agent runs)."""
    from kore_smtpda import settings
    from kore_smtpda.composer import Composer
    st = settings.STATE
    st.reset()
    st.servers["default"] = settings.make_server("default", "127.0.0.1:%d" % port)
    st.spool = root
    from kore_smtpda import spool
    spool.ensure(root)
    try:
        return [Composer("bulk %d" % i, "a@example.com", "r%d@example.com" % i).send()
                for i in range(n)]
    finally:
        st.reset()


def test_agent_killed_mid_drain_loses_none(mail_server, sinks, tmp_path):
    sink = sinks()
    sink.control(delay=0.05)
    root = str(tmp_path / "spool")
    mids = prespool(root, sink.port, 150)
    ms = mail_server("127.0.0.1:%d" % sink.port, spool=root)
    pid = ms.wait_agent()
    assert wait_for(lambda: len(sink.messages()) >= 30, 30)
    os.kill(pid, signal.SIGKILL)
    ms.wait_agent(2, timeout=30)
    assert wait_for(lambda: {m["Message-ID"] for _, m, _ in sink.messages()} == set(mids), 60)
    wait_spool(root, "incoming", 0)
    got = [m["Message-ID"] for _, m, _ in sink.messages()]
    duplicates = len(got) - len(set(got))
    assert duplicates <= 4, duplicates               # at most the sessions in flight
    assert spool_files(root, "corrupt") == [] and spool_files(root, "deferred") == []
