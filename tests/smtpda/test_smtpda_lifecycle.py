"""Start-up errors, reload, a spool shared by two servers, big attachments."""

import json
import os
import re
import signal

import pytest

from kore_testing import wait_for
from smtpda_helpers import read_env, spool_files, wait_spool

pytestmark = pytest.mark.timeout(120)


def test_config_mistakes_stop_startup(korectl, tmp_path):
    app = tmp_path / "app.py"
    app.write_text("import kore\nkore.enable_smtpda('127.0.0.1:25')\n")
    out = korectl("run", "--bind", "127.0.0.1:1", str(app), cwd=str(tmp_path),
                  env={"KORE_SMTPDA_BACKOFF_MIN": "100", "KORE_SMTPDA_BACKOFF_MAX": "10"})
    assert out.returncode == 2
    assert "option 'smtpda_backoff_max' (10) is smaller than 'smtpda_backoff_min'" in out.stderr
    out = korectl("run", "--bind", "127.0.0.1:1", "--smtpda-server", "mail:x", str(app),
                  cwd=str(tmp_path))
    assert out.returncode == 2 and "option 'smtpda_server'" in out.stderr
    out = korectl("run", "--bind", "127.0.0.1:1", str(app), cwd=str(tmp_path),
                  env={"KORE_SMTPDA_MAX_RETRY": "zero"})
    assert out.returncode == 2 and "KORE_SMTPDA_MAX_RETRY" in out.stderr
    app.write_text("import kore\nkore.smtpda_server('x', 'h:25', 'u', 'p')\n"
                   "kore.config.smtpda_spool = '/proc/no-such-dir/spool'\n")
    out = korectl("run", "--bind", "127.0.0.1:1", str(app), cwd=str(tmp_path))
    assert out.returncode == 2 and "option 'smtpda_spool': cannot create" in out.stderr


def test_kore_conf_section_and_kore_config_options(mail_server, sinks, tmp_path):
    """No enable_smtpda() call: a kore.conf ``smtpda { }`` section names the
    server (which starts the agent) and max_retry; kore.config attributes set
    in the app give the backoff."""
    sink = sinks()
    sink.control(data_reply="451 4.3.0 later")
    conf = tmp_path / "kore.conf"
    conf.write_text("smtpda {\n    server 127.0.0.1:%d\n    max_retry 2\n}\n" % sink.port)
    ms = mail_server(None, args=["-c", str(conf)], env={"SMTPDA_CONFIG": json.dumps(
        {"smtpda_backoff_min": 0.5, "smtpda_backoff_max": 0.5})})
    mid = ms.send()["message_id"]
    wait_spool(ms.spool, "undeliverable", 1, timeout=30)
    env = read_env(ms.spool, "undeliverable", spool_files(ms.spool, "undeliverable")[0])
    assert env["message_id"] == mid and env["attempts"] == 2
    assert env["bounced"][0]["reply"] == "max_retry (2) reached; last reply: 451 4.3.0 later"
    attempts = [t for t, text in sink.timed_events() if text == "data %s" % mid]
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 0.5 * 0.98, attempts


def test_default_spool_is_under_the_app_directory(mail_server, sinks, tmp_path):
    sink = sinks()
    ms = mail_server("127.0.0.1:%d" % sink.port, env={"KORE_SMTPDA_SPOOL": ""})
    ms.send()
    sink.wait_messages(1)
    assert os.path.isdir(tmp_path / "smtpda-spool" / "incoming")
    assert oct(os.stat(tmp_path / "smtpda-spool").st_mode & 0o777) == "0o700"


def test_reload_restarts_the_agent_with_new_settings(mail_server, sinks, tmp_path):
    a, b = sinks(), sinks()
    ms = mail_server("127.0.0.1:%d" % a.port)
    ms.send(subject="to a")
    a.wait_messages(1)
    app = tmp_path / "mailapp.py"
    app.write_text(app.read_text().replace('os.environ["SMTP"]',
                                           '"127.0.0.1:%d"' % b.port))
    ms.srv.send_signal(signal.SIGHUP)
    assert ms.srv.wait_log("reload complete", 30), ms.srv.log()
    assert ms.srv.wait_log("starting it with the new settings", 10), ms.srv.log()
    ms.wait_agent(2)
    mid = ms.send(subject="to b")["message_id"]
    assert b.wait_messages(1)[0][1]["Message-ID"] == mid
    assert len(a.messages()) == 1


def test_two_servers_share_a_spool_each_message_once(mail_server, sinks):
    sink = sinks()
    one = mail_server("127.0.0.1:%d" % sink.port)
    two = mail_server("127.0.0.1:%d" % sink.port, spool=one.spool, wait_agent=False)
    assert two.srv.wait_log("another delivery agent holds", 20), two.srv.log()
    mids = {one.send(subject="a%d" % i)["message_id"] for i in range(5)}
    mids |= {two.send(subject="b%d" % i)["message_id"] for i in range(5)}
    msgs = sink.wait_messages(10)
    assert sorted(m["Message-ID"] for _, m, _ in msgs) == sorted(mids)
    # the first server stops: the second one's agent takes the spool over
    assert one.srv.stop() == 0
    assert wait_for(lambda: re.search(r"smtpda agent \d+ delivering", two.srv.log()), 20)
    mid = two.send(subject="after")["message_id"]
    assert sink.wait_messages(11)[-1][1]["Message-ID"] == mid


def test_large_attachment(mail_server, sinks, tmp_path):
    sink = sinks()
    ms = mail_server("127.0.0.1:%d" % sink.port)
    blob = os.urandom(3 * 1024 * 1024)
    path = tmp_path / "big.bin"
    path.write_bytes(blob)
    r = ms.send(attachments=[[str(path), None, None]])
    (meta, m, raw), = sink.wait_messages(1)
    assert m["Message-ID"] == r["message_id"]
    part = m.get_payload()[1]
    assert part.get_payload(decode=True) == blob
    wait_spool(ms.spool, "incoming", 0)
    assert os.listdir(os.path.join(ms.spool, "tmp")) == []


def test_agent_exits_when_the_master_is_killed(mail_server, sinks):
    sink = sinks()
    ms = mail_server("127.0.0.1:%d" % sink.port)
    pid = ms.wait_agent()
    os.kill(ms.srv.pid, signal.SIGKILL)

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    assert wait_for(gone, 20)


def test_usr1_reopens_the_agents_log(mail_server, sinks, tmp_path):
    sink = sinks()
    log = tmp_path / "kore.log"
    ms = mail_server("127.0.0.1:%d" % sink.port, args=["--log-file", str(log)],
                     wait_agent=False)
    assert wait_for(lambda: log.exists() and "delivering from" in log.read_text(), 20)
    os.rename(log, tmp_path / "kore.log.1")
    ms.srv.send_signal(signal.SIGUSR1)
    assert wait_for(lambda: log.exists(), 10)
    mid = ms.send()["message_id"]
    sink.wait_messages(1)
    assert wait_for(lambda: "delivered %s" % mid in log.read_text(), 10), log.read_text()
    assert "delivered" not in (tmp_path / "kore.log.1").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_workers_and_agent_run_as_runas(mail_server, sinks):
    import pwd
    import tempfile
    nobody = pwd.getpwnam("nobody")
    base = tempfile.mkdtemp(prefix="smtpda-runas-", dir="/tmp")
    os.chmod(base, 0o755)
    spool = os.path.join(base, "spool")
    try:
        sink = sinks()
        ms = mail_server("127.0.0.1:%d" % sink.port, spool=spool, args=["--user", "nobody"])
        pid = ms.wait_agent()
        with open("/proc/%d/status" % pid) as f:
            uid = [l.split()[1] for l in f if l.startswith("Uid:")][0]
        assert int(uid) == nobody.pw_uid
        mid = ms.send()["message_id"]
        assert sink.wait_messages(1)[0][1]["Message-ID"] == mid
        assert os.stat(spool).st_uid == nobody.pw_uid
        assert os.stat(os.path.join(spool, "status.json")).st_uid == nobody.pw_uid
    finally:
        import shutil
        shutil.rmtree(base, ignore_errors=True)


def test_without_the_plugin_the_error_names_it(korectl, tmp_path):
    app = tmp_path / "app.py"
    app.write_text("import kore\nkore.enable_smtpda('127.0.0.1:25')\n")
    out = korectl("run", "--bind", "127.0.0.1:1", str(app), cwd=str(tmp_path),
                  env={"KORE_PLUGINS": "http"})
    assert out.returncode != 0 and "kore-plugin-smtpda" in out.stdout + out.stderr, out
    app.write_text("import kore\nkore.config.smtpda_server = '127.0.0.1:25'\n")
    out = korectl("run", "--bind", "127.0.0.1:1", str(app), cwd=str(tmp_path),
                  env={"KORE_PLUGINS": "http"})
    assert out.returncode != 0
    assert "belongs to kore-plugin-smtpda, which is not installed" in out.stdout + out.stderr
