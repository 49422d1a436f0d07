"""In-process tests: MIME building, addresses, the spool file format."""

import email
import os
import stat
from email import policy

import pytest

import kore
from kore.config import ConfigError, Registry
from kore_smtpda import composer, settings, spool, status
from kore_smtpda.composer import Composer

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
       b"\x00\x00\x00\x1f\x15\xc4\x89" + bytes(range(256)))


@pytest.fixture
def declared(tmp_path):
    st = settings.STATE
    st.reset()
    st.servers["default"] = settings.make_server("default", "127.0.0.1:2525")
    st.servers["auth"] = settings.make_server("auth", "mail.example.com:587", "u", "s3cret")
    st.spool = str(tmp_path / "spool")
    spool.ensure(st.spool)
    yield st
    st.reset()


def parse(c):
    return email.message_from_bytes(c.build().as_bytes(policy=policy.SMTP))


def test_headers_are_rfc2047_and_bcc_only_in_envelope(declared):
    c = Composer("Grüße aus Köln ✓", "Jürgen Müller <jm@example.com>",
                 ["Zoë <zoe@example.com>", "bob@example.com"])
    c.set_header("Cc", ["Ça va <cc@example.com>"])
    c.set_header("Bcc", ["hidden@example.com", "Bob <bob@example.com>"])
    c.set_header("X-Tag", "report")
    c.add_content("plain é", "text/plain")
    raw = c.build().as_bytes(policy=policy.SMTP)
    assert raw.isascii()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" in head                          # encoded words
    assert "Grüße".encode() not in head
    assert b"hidden@example.com" not in raw and b"Bcc" not in head
    m = email.message_from_bytes(raw, policy=policy.default)
    assert str(m["Subject"]) == "Grüße aus Köln ✓"
    assert m["From"].addresses[0].display_name == "Jürgen Müller"
    assert [a.addr_spec for a in m["To"].addresses] == ["zoe@example.com", "bob@example.com"]
    assert m["Cc"].addresses[0].display_name == "Ça va"
    assert m["Message-ID"].startswith("<") and m["Message-ID"].endswith("@example.com>")
    assert m["Date"].datetime is not None
    assert m["X-Tag"] == "report"
    assert c._envelope_rcpt() == ["zoe@example.com", "bob@example.com", "cc@example.com",
                                  "hidden@example.com"]


def test_related_image_alternative_and_base64_attachment(declared, tmp_path):
    img = tmp_path / "logo.png"
    img.write_bytes(PNG)
    doc = tmp_path / "report.pdf"
    doc.write_bytes(b"%PDF-1.4 " + bytes(range(256)) * 4)
    c = Composer("s", "a@example.com", "b@example.com")
    c.add_content("text version", "text/plain")
    c.add_content("<p>Hi <img src='cid:logo1'></p>", "text/html")
    c.add_attachment(str(img), cid="logo1")
    c.add_attachment(str(doc), name="Bericht März.pdf")
    m = parse(c)
    assert m.get_content_type() == "multipart/mixed"
    body, att = m.get_payload()
    assert body.get_content_type() == "multipart/alternative"
    plain, related = body.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html, image = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == "<logo1>"
    assert image["Content-Transfer-Encoding"] == "base64"
    assert image.get_payload(decode=True) == PNG
    assert att.get_content_type() == "application/pdf"
    assert att["Content-Transfer-Encoding"] == "base64"
    assert att.get_filename() == "Bericht März.pdf"
    assert att.get_payload(decode=True) == doc.read_bytes()


def test_bad_input_is_refused_clearly(declared, tmp_path):
    with pytest.raises(ValueError, match="not an e-mail address"):
        Composer("s", "nobody", "b@example.com")
    with pytest.raises(ValueError, match="line breaks"):
        Composer("s\r\nBcc: x@example.com", "a@example.com", "b@example.com")
    c = Composer("s", "a@example.com", "b@example.com")
    with pytest.raises(ValueError, match="line breaks"):
        c.set_header("X-Evil", "a\r\nBcc: x@example.com")
    with pytest.raises(FileNotFoundError, match="no such file"):
        c.add_attachment(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="mimetype"):
        c.add_content("x", "image/png")
    with pytest.raises(ValueError, match="never written to the spool"):
        c.set_smtp("mail.example.com:587", "u", "wrong")


def test_set_smtp_references_servers_by_name(declared):
    c = Composer("s", "a@example.com", "b@example.com")
    c.set_smtp("mail.example.com:587", "u", "s3cret")
    assert c.server == "auth"
    c.set_smtp("auth")
    assert c.server == "auth"
    c.set_smtp("127.0.0.1:2525")
    assert c.server == "default"
    c.set_smtp("relay.example.com", ssl=True)
    assert c.server == {"host": "relay.example.com", "port": 25, "ssl": True}
    c.set_smtp("relay.example.com:465")
    assert c.server == {"host": "relay.example.com", "port": 465, "ssl": True}


def test_send_writes_a_complete_0600_file_without_secrets(declared, tmp_path):
    img = tmp_path / "a.png"
    img.write_bytes(PNG)
    c = Composer("s", "a@example.com", "b@example.com")
    c.set_smtp("mail.example.com:587", "u", "s3cret")
    c.add_attachment(str(img), cid="x")
    mid = c.send()
    os.unlink(img)                                   # copied at send(): not needed later
    img.write_bytes(b"changed after send()")
    names = spool.names(declared.spool, "incoming")
    assert len(names) == 1
    path = os.path.join(declared.spool, "incoming", names[0])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = open(path, "rb").read()
    assert b"s3cret" not in data
    env, message = spool.decode(data)
    assert env["server"] == "auth" and env["message_id"] == mid
    assert env["rcpt"] == ["b@example.com"] and env["attempts"] == 0
    m = email.message_from_bytes(message)
    assert m["Message-ID"] == mid
    image, = [p for p in m.walk() if p.get_content_type() == "image/png"]
    assert image.get_payload(decode=True) == PNG        # the bytes as they were at send()
    assert os.listdir(os.path.join(declared.spool, "tmp")) == []
    with pytest.raises(RuntimeError, match="already sent"):
        c.send()


def test_send_without_server_says_how_to_fix(declared):
    declared.servers.clear()
    with pytest.raises(RuntimeError, match="enable_smtpda"):
        Composer("s", "a@example.com", "b@example.com").send()


def test_corrupt_and_truncated_files_are_recognised():
    blob = spool.encode({"id": "x.msg", "message_id": "<a@b>", "sender": "a@b",
                         "rcpt": ["c@d"], "server": "default", "created": 1.0,
                         "attempts": 0}, b"Subject: x\r\n\r\nbody\r\n")
    env, msg = spool.decode(blob)
    assert msg.endswith(b"body\r\n")
    for bad in (blob[:-3], blob[:20], b"garbage", blob.replace(b"body", b"bodY"),
                blob.replace(b'"attempts":0', b'"attempts":"0"')):
        with pytest.raises(spool.CorruptFile):
            spool.decode(bad)


def test_server_addresses():
    assert settings.parse_address("mail.example.com") == ("mail.example.com", 25)
    assert settings.parse_address("[::1]:2525") == ("::1", 2525)
    assert settings.make_server("d", "h:465").ssl is True
    for bad in ("", "h:x", "h:0", ":25"):
        with pytest.raises(ValueError):
            settings.parse_address(bad)


def test_conf_file_section_sets_plugin_options(tmp_path):
    from kore import confparse
    reg = Registry()
    for opt in settings.options():
        reg.add(opt)
    conf = tmp_path / "kore.conf"
    conf.write_text("smtpda {\n    server 127.0.0.1:2525\n    max_retry 4\n"
                    "    keep_days 1\n}\n")
    confparse.load(str(conf), reg)
    assert reg.get("smtpda_server") == "127.0.0.1:2525"
    assert reg.get("smtpda_max_retry") == 4
    conf.write_text("smtpda {\n    max_retry many\n}\n")
    with pytest.raises(ConfigError, match=r"kore.conf:2: bad value 'many' for option "
                                          r"'smtpda_max_retry'"):
        confparse.load(str(conf), reg)


def test_missing_plugin_names_the_package():
    assert kore._NAME_TO_PACKAGE["email"] == "kore-plugin-smtpda"
    assert kore._NAME_TO_PACKAGE["enable_smtpda"] == "kore-plugin-smtpda"


def test_status_read_counts_queues(tmp_path):
    root = spool.ensure(str(tmp_path / "s"))
    blob = spool.encode({"id": "a.msg", "message_id": "<a@b>", "sender": "a@b",
                         "rcpt": ["c@d"], "server": "default", "created": 1.0,
                         "attempts": 0}, b"x")
    spool.write_atomic(root, "incoming", spool.new_name(), blob)
    spool.write_atomic(root, "deferred", spool.new_name(), blob)
    spool.write_atomic(root, "deferred", spool.new_name(), blob)
    doc = status.read(root)
    assert doc["agent"] is None
    assert doc["queue"] == {"depth": 3, "incoming": 1, "deferred": 2, "undeliverable": 0,
                            "corrupt": 0}
    assert [r["queue"] for r in status.entries(root)] == ["incoming", "deferred", "deferred"]


def test_nudge_without_agent_is_harmless(tmp_path):
    composer._nudge(str(tmp_path))


def test_spool_write_is_tmp_fsync_rename(tmp_path, monkeypatch):
    """The file is written in tmp/, fsync'ed, renamed into the queue, then the
    queue directory is fsync'ed; a failure before the rename leaves nothing
    in the queue and nothing in tmp/."""
    root = spool.ensure(str(tmp_path / "s"))
    calls = []
    real_open, real_fsync, real_rename = os.open, os.fsync, os.rename

    def rec_open(path, flags, mode=0o777, **kw):
        fd = real_open(path, flags, mode, **kw)
        calls.append(("open", path, flags, mode))
        return fd

    def rec_fsync(fd):
        calls.append(("fsync", os.readlink("/proc/self/fd/%d" % fd)))
        return real_fsync(fd)

    def rec_rename(src, dst):
        calls.append(("rename", src, dst))
        return real_rename(src, dst)
    monkeypatch.setattr(os, "open", rec_open)
    monkeypatch.setattr(os, "fsync", rec_fsync)
    monkeypatch.setattr(os, "rename", rec_rename)
    final = spool.write_atomic(root, "incoming", "x.msg", b"data")
    (op, tmp, flags, mode), sync_file, (op2, src, dst), _open_dir, sync_dir = calls
    assert os.path.dirname(tmp) == os.path.join(root, "tmp")
    assert flags & os.O_EXCL and flags & os.O_CREAT and mode == 0o600
    assert sync_file == ("fsync", tmp)                  # data on disk before the rename
    assert (src, dst) == (tmp, final) == (tmp, os.path.join(root, "incoming", "x.msg"))
    assert sync_dir == ("fsync", os.path.join(root, "incoming"))
    assert stat.S_IMODE(os.stat(final).st_mode) == 0o600

    def no_space(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        spool.write_atomic(root, "incoming", "y.msg", b"data")
    assert spool.names(root, "incoming") == ["x.msg"]
    assert os.listdir(os.path.join(root, "tmp")) == []


def test_add_content_charset(declared):
    c = Composer("s", "a@example.com", "b@example.com")
    c.add_content("Grüße", "text/plain", "iso-8859-1")
    c.add_content("<p>Grüße</p>".encode("utf-8"), "text/html")     # bytes: utf8 default
    raw = c.build().as_bytes(policy=policy.SMTP)
    assert raw.isascii()                                # 7-bit clean: no 8BITMIME needed
    plain, html = email.message_from_bytes(raw).get_payload()
    assert plain.get_content_charset() == "iso-8859-1"
    assert plain["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert plain.get_payload(decode=True).rstrip() == "Grüße".encode("iso-8859-1")
    assert html.get_content_charset() == "utf-8"
    assert html.get_payload(decode=True).decode("utf-8").rstrip() == "<p>Grüße</p>"
    with pytest.raises(UnicodeDecodeError):
        c.add_content("é".encode("utf-8"), "text/plain", "ascii")
    with pytest.raises(UnicodeEncodeError):
        c.add_content("✓", "text/plain", "iso-8859-1")
    with pytest.raises(LookupError):
        c.add_content("x", "text/plain", "no-such-charset")


def test_skitai_signatures():
    """The names and defaults a Skitai application calls (kore.email and
    kore.enable_smtpda are these functions: kore_namespace)."""
    import inspect

    from kore_smtpda import plugin
    assert plugin.kore_namespace()["enable_smtpda"] is settings.enable_smtpda

    def sig(f):
        return [(p.name, p.default) for p in inspect.signature(f).parameters.values()]
    E = inspect.Parameter.empty
    assert sig(plugin.email) == [("subject", E), ("snd", E), ("rcpt", E)]
    assert sig(Composer.set_smtp) == [("self", E), ("server", E), ("user", None),
                                      ("password", None), ("ssl", False)]
    assert sig(Composer.add_content)[:2] == [("self", E), ("data", E)]
    assert [n for n, _ in sig(Composer.add_content)] == ["self", "data", "mimetype", "charset"]
    assert sig(Composer.add_content)[3] == ("charset", "utf8")
    assert sig(Composer.add_attachment) == [("self", E), ("filename", E), ("name", None),
                                            ("cid", None)]
    assert sig(Composer.set_header) == [("self", E), ("name", E), ("value", E)]
    assert sig(Composer.send) == [("self", E)]
    # None = "leave the option as configured": unset, max_retry is 10 and
    # keep_days 3 (test_option_defaults_are_skitai_and_postfix)
    assert [n for n, _ in sig(settings.enable_smtpda)] == ["server", "user", "password", "ssl",
                                                       "max_retry", "keep_days"]
