"""One SMTP session, with Postfix's TLS and reply semantics.

* implicit TLS when the server is declared ``ssl`` (or its port is 465);
* otherwise STARTTLS whenever the server offers it; the certificate and host
  name are verified (``smtpda_tls_verify``, extra CAs in ``smtpda_cafile``);
* a server without STARTTLS gets the message in the clear only when no
  credentials are configured: AUTH over a connection without TLS is refused
  (the message is deferred) unless the server allows ``auth_without_tls``;
* replies: 2xx delivered, 4xx (and every connection, TLS or timeout failure)
  deferred, 5xx to MAIL, RCPT or DATA undeliverable with the server's reply.
  Failures before the transaction (greeting, EHLO, STARTTLS, AUTH) say
  nothing about the message and are always deferred, as in Postfix.
"""

import smtplib
import socket
import ssl
import time

DEFER = "defer"
BOUNCE = "bounce"


class SessionError(Exception):
    """The session failed before a transaction: every recipient is deferred."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text


def _reply(exc):
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = exc.smtp_error
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        return "%d %s" % (exc.smtp_code, " ".join(str(msg).split()))
    text = str(exc) or type(exc).__name__
    return "%s: %s" % (type(exc).__name__, text)


def tls_context(cafile="", verify=True):
    ctx = ssl.create_default_context(cafile=cafile or None)
    if cafile:
        ctx.load_default_certs()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Session:
    """A connected, possibly authenticated SMTP client for one server."""

    def __init__(self, server, ctx, timeout=120.0, helo_name=None):
        self.server = server
        self.key = server_key(server)
        self.count = 0
        self.last_used = 0.0
        self.tls = False
        cls_kw = {"local_hostname": helo_name or None, "timeout": timeout}
        try:
            if server["ssl"]:
                self.smtp = smtplib.SMTP_SSL(server["host"], server["port"],
                                             context=ctx, **cls_kw)
                self.tls = True
            else:
                self.smtp = smtplib.SMTP(server["host"], server["port"], **cls_kw)
        except (OSError, smtplib.SMTPException) as exc:
            raise SessionError("connect to %s:%d: %s"
                               % (server["host"], server["port"], _reply(exc))) from None
        try:
            self._hello(ctx)
        except BaseException:
            self.close()
            raise

    def _hello(self, ctx):
        s = self.smtp
        try:
            code, resp = s.ehlo()
            if not 200 <= code < 300:
                code, resp = s.helo()
                if not 200 <= code < 300:
                    raise SessionError("HELO refused: %d %s" % (code, resp.decode(
                        "utf-8", "replace")))
            if not self.tls and s.has_extn("starttls"):
                s.starttls(context=ctx)
                self.tls = True
                s.ehlo()
            user = self.server.get("user")
            if user:
                if not self.tls and not self.server.get("auth_without_tls"):
                    raise SessionError(
                        "%s:%d offers no STARTTLS: credentials are not sent over a "
                        "connection without TLS (declare the server with "
                        "auth_without_tls=True / option smtpda_auth_without_tls to allow "
                        "it)" % (self.server["host"], self.server["port"]))
                s.login(user, self.server.get("password") or "")
        except SessionError:
            raise
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            raise SessionError("%s:%d: %s" % (self.server["host"], self.server["port"],
                                              _reply(exc))) from None

    def send(self, sender, rcpt, message):
        """Run one transaction.  Returns ``(delivered, deferred, bounced)``:
        a list of recipients and two ``{recipient: reply}`` dicts.  Raises
        SessionError when the connection failed (nothing known delivered)."""
        self.count += 1
        s = self.smtp
        try:
            refused = s.sendmail(sender, rcpt, message)
        except smtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
            if not refused:
                raise SessionError(_reply(exc)) from None
            return self._split([], refused)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            reply = _reply(exc)
            if 500 <= exc.smtp_code < 600:
                return [], {}, {r: reply for r in rcpt}
            return [], {r: reply for r in rcpt}, {}
        except smtplib.SMTPResponseException as exc:
            reply = _reply(exc)
            if 500 <= exc.smtp_code < 600:
                return [], {}, {r: reply for r in rcpt}
            return [], {r: reply for r in rcpt}, {}
        except (OSError, smtplib.SMTPException) as exc:
            raise SessionError(_reply(exc)) from None
        return self._split([r for r in rcpt if r not in refused], refused)

    @staticmethod
    def _split(delivered, refused):
        deferred, bounced = {}, {}
        for r, (code, msg) in refused.items():
            if isinstance(msg, bytes):
                msg = msg.decode("utf-8", "replace")
            reply = "%d %s" % (code, " ".join(str(msg).split()))
            (bounced if 500 <= code < 600 else deferred)[r] = reply
        return delivered, deferred, bounced

    def reset(self):
        try:
            self.smtp.rset()
            return True
        except (OSError, smtplib.SMTPException):
            return False

    def close(self, quit=True):
        """QUIT and close; ``quit=False`` only closes (a session in an
        unknown state, or an agent being killed, does not wait for a reply)."""
        if quit:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
        try:
            self.smtp.close()
        except (OSError, smtplib.SMTPException):
            pass


class SessionCache:
    """Idle sessions by server, reused for the next message to it: kept
    ``IDLE`` seconds, renewed after ``MESSAGES`` messages."""

    IDLE = 5.0
    MESSAGES = 100

    def __init__(self):
        self.idle = {}                  # server key -> [Session]

    def take(self, key):
        sessions = self.idle.get(key)
        while sessions:
            sess = sessions.pop()
            if time.monotonic() - sess.last_used < self.IDLE:
                return sess
            sess.close()
        return None

    def give(self, key, sess, stopping=False):
        if stopping or sess.count >= self.MESSAGES:
            sess.close()
            return
        sess.last_used = time.monotonic()
        self.idle.setdefault(key, []).append(sess)

    def close(self, everything=False):
        """Close the sessions idle too long (all of them with ``everything``)."""
        now = time.monotonic()
        for key, sessions in list(self.idle.items()):
            keep = []
            for sess in sessions:
                if everything or now - sess.last_used >= self.IDLE:
                    sess.close()
                else:
                    keep.append(sess)
            self.idle[key] = keep


def server_key(server):
    return (server["host"], server["port"], bool(server["ssl"]), server.get("user"))


def getfqdn():
    try:
        return socket.getfqdn()
    except OSError:
        return "localhost"
