"""TLS and AUTH: STARTTLS, implicit TLS, verification, no AUTH in the clear."""

import json

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


def test_starttls_and_auth_and_implicit_tls(mail_server, sinks, certs):
    starttls = sinks(starttls=True, certs=certs, auth="mailer:pa55word")
    implicit = sinks(implicit_tls=True, certs=certs, auth="other:secret2")
    ms = mail_server("127.0.0.1:%d" % starttls.port, env=dict(
        SMTP_USER="mailer", SMTP_PASSWORD="pa55word", KORE_SMTPDA_CAFILE=certs["ca"],
        SMTP_NAMED="tls465,127.0.0.1:%d,other,secret2,1" % implicit.port))
    a = ms.send(subject="via starttls")["message_id"]
    b = ms.send(subject="via implicit tls", smtp=["tls465"])["message_id"]
    c = ms.send(subject="by credentials",
                smtp=["127.0.0.1:%d" % implicit.port, "other", "secret2", True])["message_id"]
    (meta, m, raw), = starttls.wait_messages(1)
    assert m["Message-ID"] == a and meta["tls"] is True and meta["auth"] == "mailer"
    msgs = implicit.wait_messages(2)
    assert {mm["Message-ID"] for _, mm, _ in msgs} == {b, c}
    assert all(meta["tls"] and meta["auth"] == "other" for meta, _, _ in msgs)
    for name in ("incoming", "deferred", "undeliverable"):
        assert spool_files(ms.spool, name) == []


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
    assert ms.srv.stop() == 0
    # explicitly allowed: AUTH in the clear, delivered
    ms = mail_server("127.0.0.1:%d" % sink.port, spool=ms.spool,
                     env=dict(env, KORE_SMTPDA_AUTH_WITHOUT_TLS="1",
                              KORE_SMTPDA_BACKOFF_MIN="0.3", KORE_SMTPDA_BACKOFF_MAX="0.3"))
    (meta, m, raw), = sink.wait_messages(1, timeout=30)
    assert meta["auth"] == "mailer" and meta["tls"] is False


def test_wrong_password_defers_not_bounces(mail_server, sinks, certs):
    sink = sinks(starttls=True, certs=certs, auth="mailer:pa55word")
    ms = mail_server("127.0.0.1:%d" % sink.port, env=dict(
        RETRY, SMTP_USER="mailer", SMTP_PASSWORD="wrong", KORE_SMTPDA_CAFILE=certs["ca"]))
    ms.send()
    assert "535" in deferred_errors(ms)
    assert spool_files(ms.spool, "undeliverable") == []
