"""TLS and AUTH: STARTTLS, implicit TLS, verification, no AUTH in the clear."""

import json
import os
import stat

import pytest

from kore_testing import wait_for
from smtpda_helpers import read_env, spool_files, wait_spool

pytestmark = pytest.mark.timeout(120)

RETRY = {"KORE_SMTPDA_BACKOFF_MIN": "0.5", "KORE_SMTPDA_BACKOFF_MAX": "1"}


def deferred_errors(ms):
    wait_spool(ms.spool, "deferred", 1)
    name = spool_files(ms.spool, "deferred")[0]
    assert wait_for(lambda: read_env(ms.spool, "deferred", name)["errors"], 10)
    return json.dumps(read_env(ms.spool, "deferred", name)["errors"])


def test_starttls_and_auth_and_implicit_tls(mail_server, sinks, certs, wrong_name_certs,
                                            tmp_path):
    """enable_smtpda(..., ssl=True): implicit TLS; a server offering
    STARTTLS gets it before AUTH; certificates and host names are verified;
    no password is written to the spool."""
    starttls = sinks(starttls=True, certs=certs, auth="mailer:pa55word")
    implicit = sinks(implicit_tls=True, certs=certs, auth="other:secret2")
    # trusted CA, but a certificate for another name than 127.0.0.1
    wrong = sinks(starttls=True, certs=wrong_name_certs)
    cafile = tmp_path / "cas.pem"
    with open(certs["ca"], "rb") as one, open(wrong_name_certs["ca"], "rb") as two:
        cafile.write_bytes(one.read() + two.read())
    ms = mail_server("127.0.0.1:%d" % implicit.port, env=dict(
        SMTP_USER="other", SMTP_PASSWORD="secret2", SMTP_SSL="1",
        KORE_SMTPDA_CAFILE=str(cafile),
        SMTP_NAMED="starttls,127.0.0.1:%d,mailer,pa55word,0;wrongname,127.0.0.1:%d,,,0"
                   % (starttls.port, wrong.port)))
    a = ms.send(subject="via implicit tls")["message_id"]
    b = ms.send(subject="via starttls", smtp=["starttls"])["message_id"]
    c = ms.send(subject="by credentials",
                smtp=["127.0.0.1:%d" % starttls.port, "mailer", "pa55word"])["message_id"]
    (meta, m, raw), = implicit.wait_messages(1)
    assert m["Message-ID"] == a and meta["tls"] is True and meta["auth"] == "other"
    msgs = starttls.wait_messages(2)
    assert {mm["Message-ID"] for _, mm, _ in msgs} == {b, c}
    assert all(meta["tls"] and meta["auth"] == "mailer" for meta, _, _ in msgs)
    d = ms.send(subject="wrong name", smtp=["wrongname"])["message_id"]
    errors = deferred_errors(ms)
    assert "mismatch" in errors and "127.0.0.1" in errors, errors
    assert wrong.messages() == [] and "data %s" % d not in wrong.events()
    for name in ("incoming", "undeliverable"):
        assert spool_files(ms.spool, name) == []
    for dirpath, dirs, files in os.walk(ms.spool):
        assert all(stat.S_IMODE(os.stat(os.path.join(dirpath, d)).st_mode) == 0o700
                   for d in dirs), dirpath
        for f in files:
            try:
                mode = stat.S_IMODE(os.stat(os.path.join(dirpath, f)).st_mode)
            except FileNotFoundError:
                continue
            assert mode == 0o600, (f, oct(mode))     # messages, status, lock, socket
            if f.endswith(".sock"):
                continue
            try:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:           # status.json.tmp replaced meanwhile
                continue
            assert b"pa55word" not in data and b"secret2" not in data, f


def test_unverified_certificate_defers(mail_server, sinks, certs):
    sink = sinks(starttls=True, certs=certs)
    ms = mail_server("127.0.0.1:%d" % sink.port, env=RETRY)      # test CA not trusted
    mid = ms.send()["message_id"]
    assert "CERTIFICATE_VERIFY_FAILED" in deferred_errors(ms)
    assert sink.messages() == []
    assert ms.srv.stop() == 0
    # smtpda_tls_verify = no: encrypted, not verified
    ms = mail_server("127.0.0.1:%d" % sink.port, spool=ms.spool,
                     env=dict(RETRY, KORE_SMTPDA_TLS_VERIFY="no"))
    (meta, m, raw), = sink.wait_messages(1)
    assert m["Message-ID"] == mid and meta["tls"] is True


def test_no_auth_without_tls(mail_server, sinks):
    sink = sinks(auth="mailer:pa55word", env={"SINK_AUTH_WITHOUT_TLS": "1"})
    env = dict(RETRY, SMTP_USER="mailer", SMTP_PASSWORD="pa55word")
    ms = mail_server("127.0.0.1:%d" % sink.port, env=env)
    ms.send()
    assert "offers no STARTTLS: credentials are not sent" in deferred_errors(ms)
    assert sink.messages() == []
    # the sink offered AUTH and would have taken it: the agent never sent it
    assert [e for e in sink.events() if e.startswith("auth")] == []
    assert ms.srv.stop() == 0
    # explicitly allowed: AUTH in the clear, delivered
    ms = mail_server("127.0.0.1:%d" % sink.port, spool=ms.spool,
                     env=dict(env, KORE_SMTPDA_AUTH_WITHOUT_TLS="1",
                              KORE_SMTPDA_BACKOFF_MIN="0.3", KORE_SMTPDA_BACKOFF_MAX="0.3"))
    (meta, m, raw), = sink.wait_messages(1, timeout=30)
    assert meta["auth"] == "mailer" and meta["tls"] is False
    assert "auth mailer" in sink.events()


def test_wrong_password_defers_not_bounces(mail_server, sinks, certs):
    sink = sinks(starttls=True, certs=certs, auth="mailer:pa55word")
    ms = mail_server("127.0.0.1:%d" % sink.port, env=dict(
        RETRY, SMTP_USER="mailer", SMTP_PASSWORD="wrong", KORE_SMTPDA_CAFILE=certs["ca"]))
    ms.send()
    assert "535" in deferred_errors(ms)
    assert spool_files(ms.spool, "undeliverable") == []
