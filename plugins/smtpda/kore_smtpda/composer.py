"""``kore.email(subject, snd, rcpt)``: Skitai's composer, spooled at send().

    e = kore.email("Report", "Kore <noreply@example.com>", ["a@example.com"])
    e.set_header("Cc", ["b@example.com"])
    e.add_content("<p>Hello <img src='cid:logo'></p>", "text/html")
    e.add_attachment("logo.png", cid="logo")
    e.add_attachment("report.pdf")
    message_id = e.send()

``send()`` builds the whole message (attachments read and base64-encoded
then), writes it to the spool atomically and returns its Message-ID; it never
talks SMTP.  Headers with non-ASCII text (subject, display names) are RFC
2047-encoded by the ``email`` package; Bcc recipients are only in the
envelope.
"""

import mimetypes
import os
import time
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import formatdate, getaddresses, make_msgid

from kore import runtime

from . import settings, spool

SEVEN_BIT = policy.SMTP.clone(cte_type="7bit")
ADDRESS_HEADERS = ("from", "to", "cc", "bcc", "reply-to", "sender")


def _addresses(value, header):
    """Parse one or several addresses (str, "a, b", list/tuple, (name, addr))."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, str) for v in value) and "@" not in value[0] and "@" in value[1]:
        value = [value]
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, (list, tuple)):
            if len(item) != 2:
                raise ValueError("%s: expected (name, address), got %r" % (header, item))
            pairs = [tuple(item)]
        elif isinstance(item, str):
            pairs = getaddresses([item])
        else:
            raise TypeError("%s: addresses are str, (name, address) or a list of them, "
                            "not %s" % (header, type(item).__name__))
        for name, addr in pairs:
            if "\r" in addr or "\n" in addr or "\r" in name or "\n" in name:
                raise ValueError("%s: line breaks in an address" % header)
            addr = addr.strip()
            local, at, domain = addr.rpartition("@")
            if not at or not local or not domain or " " in addr:
                raise ValueError("%s: %r is not an e-mail address" % (header, item))
            if not local.isascii():
                raise ValueError("%s: %r: non-ASCII local parts need SMTPUTF8, "
                                 "which this agent does not send" % (header, addr))
            if not domain.isascii():
                domain = domain.encode("idna").decode("ascii")
            out.append(Address(display_name=name.strip(), username=local, domain=domain))
    if not out:
        raise ValueError("%s: no address given" % header)
    return out


class Attachment:
    __slots__ = ("path", "name", "cid")

    def __init__(self, path, name, cid):
        self.path = path
        self.name = name
        self.cid = cid


class Composer:
    """One message being composed (Skitai's ``Composer``)."""

    def __init__(self, subject, snd, rcpt):
        if not isinstance(subject, str):
            raise TypeError("kore.email: subject must be a str")
        if "\r" in subject or "\n" in subject:
            raise ValueError("kore.email: line breaks in the subject")
        self.subject = subject
        self.sender = _addresses(snd, "From")
        if len(self.sender) != 1:
            raise ValueError("kore.email: exactly one sender address")
        self.to = _addresses(rcpt, "To")
        self.cc = []
        self.bcc = []
        self.headers = []           # (name, value) set by set_header
        self.contents = []          # (text, subtype, charset)
        self.attachments = []
        self.server = None          # spool reference, None = "default"
        self.sent = None

    # -- Skitai's API ---------------------------------------------------------

    def set_smtp(self, server, user=None, password=None, ssl=False):
        """Deliver through ``server``: a name given to kore.smtpda_server
        ("default" for enable_smtpda's), or ``"host:port"`` with the user,
        password and ssl of a declared server (or none, for a server without
        AUTH)."""
        self.server = settings.find_server(server, user, password, ssl)
        return self

    def add_content(self, data, mimetype="text/plain", charset="utf8"):
        """Add a body part: ``text/plain`` and ``text/html`` together become
        ``multipart/alternative``."""
        maintype, _, subtype = (mimetype or "").partition("/")
        if maintype != "text" or not subtype:
            raise ValueError("add_content: mimetype must be text/..., not %r" % mimetype)
        if isinstance(data, bytes):
            data = data.decode(charset)
        if not isinstance(data, str):
            raise TypeError("add_content: data must be str or bytes")
        data.encode(charset)        # a charset that cannot hold the text fails here
        charset = "utf-8" if charset.lower().replace("-", "") == "utf8" else charset
        self.contents.append((data, subtype.lower(), charset))
        return self

    add_text = add_content

    def add_attachment(self, filename, name=None, cid=None):
        """Attach a file (read at send()); with ``cid`` it is an inline part
        of the HTML content, referenced as ``cid:<cid>``."""
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError("add_attachment: filename must be a path")
        path = os.path.abspath(os.fspath(filename))
        if not os.path.isfile(path):
            raise FileNotFoundError("add_attachment: no such file: %s" % path)
        if cid is not None:
            cid = str(cid).strip("<>")
            if not cid or any(c in cid for c in "\r\n <>"):
                raise ValueError("add_attachment: bad cid %r" % cid)
        self.attachments.append(Attachment(path, name or os.path.basename(path), cid))
        return self

    def set_header(self, name, value):
        """Set a header; To, Cc and Bcc take a list of addresses too."""
        if not isinstance(name, str) or not name or any(c in name for c in ": \r\n"):
            raise ValueError("set_header: bad header name %r" % (name,))
        key = name.lower()
        if key in ("to", "cc", "bcc"):
            setattr(self, key, _addresses(value, name))
            return self
        if key == "from":
            self.sender = _addresses(value, name)[:1]
            return self
        if key == "subject":
            self.subject = str(value)
            return self
        if key in ADDRESS_HEADERS:
            value = _addresses(value, name)
        else:
            value = str(value)
            if "\r" in value or "\n" in value:
                raise ValueError("set_header: line breaks in the value of %s" % name)
        self.headers = [(n, v) for n, v in self.headers if n.lower() != key]
        self.headers.append((name, value))
        return self

    def send(self):
        """Spool the message; returns its Message-ID.  Never waits on SMTP."""
        if self.sent is not None:
            raise RuntimeError("send(): this message was already sent (%s)" % self.sent)
        state = settings.STATE
        server = self.server or "default"
        if isinstance(server, str) and server not in state.servers:
            raise RuntimeError("kore.email: no SMTP server: call kore.enable_smtpda(...) "
                               "or set option smtpda_server while the app is configured, "
                               "or call set_smtp() on the message")
        root = settings.worker_spool()
        if root is None:
            raise RuntimeError("kore.email: the smtpda spool is not configured yet "
                               "(send mail once the app is loaded)")
        msg = self.build()
        data = msg.as_bytes(policy=policy.SMTP)
        env = {
            "id": spool.new_name(),
            "message_id": msg["Message-ID"],
            "sender": self.sender[0].addr_spec,
            "rcpt": self._envelope_rcpt(),
            "server": server,
            "created": time.time(),
            "attempts": 0,
            "next_attempt": 0,
            "errors": [],
            "bounced": [],
        }
        blob = spool.encode(env, data)
        if runtime.worker() is not None:
            # the write and its fsyncs run in gevent's thread pool: this
            # handler waits for them, the worker's other connections do not
            import gevent
            gevent.get_hub().threadpool.apply(spool.write_atomic,
                                              (root, "incoming", env["id"], blob))
        else:
            spool.write_atomic(root, "incoming", env["id"], blob)
        _nudge(root)
        self.sent = env["message_id"]
        return self.sent

    # -- MIME -------------------------------------------------------------------

    def _envelope_rcpt(self):
        seen, out = set(), []
        for a in self.to + self.cc + self.bcc:
            k = a.addr_spec.lower()
            if k not in seen:
                seen.add(k)
                out.append(a.addr_spec)
        return out

    def _body(self):
        """The content part (alternative when several), without attachments."""
        contents = self.contents or [("", "plain", "utf-8")]
        parts = []
        for text, subtype, charset in contents:
            if charset == "utf-8":
                p = MIMEPart(policy=policy.SMTP)
                p.set_content(text, subtype=subtype, charset=charset, cte="quoted-printable")
            else:
                # 7bit policy: the email package picks 7bit, quoted-printable
                # or base64 for the charset, never raw 8-bit (no 8BITMIME)
                p = MIMEPart(policy=SEVEN_BIT)
                p.set_content(text, subtype=subtype, charset=charset)
            parts.append(p)
        inline = [a for a in self.attachments if a.cid]
        if inline:
            target = next((i for i, p in enumerate(parts)
                           if p.get_content_subtype() == "html"), 0)
            related = MIMEPart(policy=policy.SMTP)
            related.make_related()
            related.attach(parts[target])
            for a in inline:
                related.attach(self._file_part(a, inline=True))
            parts[target] = related
        if len(parts) == 1:
            return parts[0]
        alt = MIMEPart(policy=policy.SMTP)
        alt.make_alternative()
        for p in parts:
            alt.attach(p)
        return alt

    @staticmethod
    def _file_part(a, inline=False):
        with open(a.path, "rb") as f:
            data = f.read()
        return _bytes_part(data, a.name, a.cid, inline)

    def build(self):
        """The complete ``EmailMessage`` (Message-ID and Date included)."""
        body = self._body()
        files = [a for a in self.attachments if not a.cid]
        if files:
            top = MIMEPart(policy=policy.SMTP)
            top.make_mixed()
            top.attach(body)
            for a in files:
                top.attach(self._file_part(a))
            body = top
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = self.sender
        msg["To"] = self.to
        if self.cc:
            msg["Cc"] = self.cc
        msg["Subject"] = self.subject
        custom = {n.lower() for n, _ in self.headers}
        if "date" not in custom:
            msg["Date"] = formatdate(localtime=True)
        if "message-id" not in custom:
            msg["Message-ID"] = make_msgid(domain=self.sender[0].domain)
        msg["MIME-Version"] = "1.0"
        for name, value in self.headers:
            msg[name] = value
        for key, value in body.items():
            if key.lower() != "mime-version":
                msg[key] = value
        msg.set_payload(body.get_payload())
        return msg


def email(subject, snd, rcpt):
    """``kore.email(subject, snd, rcpt)`` -> a ``Composer``."""
    return Composer(subject, snd, rcpt)


def _bytes_part(data, name, cid=None, inline=False):
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    maintype, subtype = ctype.split("/", 1)
    p = MIMEPart(policy=policy.SMTP)
    p.set_content(data, maintype=maintype, subtype=subtype, cte="base64",
                  disposition="inline" if inline else "attachment",
                  filename=name, cid="<%s>" % cid if cid else None)
    return p


def warm_up():
    """Import and initialise, in the master at app load, everything send()
    uses: a worker that chroots or drops to ``runas`` may no longer read the
    Python library (and the first send() would pay for it anyway).  In a
    worker it also starts the thread that writes the spool."""
    import hmac  # noqa: F401  (settings.find_server)
    import gevent.threadpool  # noqa: F401
    mimetypes.init()
    c = Composer("warm-up é", "Ä <a@example.com>", "b@example.com")
    c.add_content("x é", "text/plain")
    c.add_content("<p>x</p>", "text/html")
    msg = c.build()
    msg.make_mixed()
    msg.attach(_bytes_part(b"\x89PNG", "x.png", "c", True))
    msg.as_bytes(policy=policy.SMTP)
    if runtime.worker() is not None:
        import gevent
        gevent.get_hub().threadpool.apply(len, ((),))


def _nudge(root):
    """Tell the agent a message arrived (it polls anyway: best effort)."""
    import socket
    path = os.path.join(root, "agent.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        s.sendto(b"n", path)
    except OSError:
        pass
    finally:
        s.close()
