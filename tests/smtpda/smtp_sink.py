"""A test SMTP server (aiosmtpd), run as its own process.

    python smtp_sink.py --dir DIR --port PORT [--starttls | --implicit-tls]
                        [--cert PEM --key PEM] [--auth USER:PASSWORD]

It prints ``ready`` once it listens.  Every message it accepts is written to
``DIR/received/<n>.eml`` with its envelope in ``<n>.json`` (mail_from,
rcpt_tos, tls, auth), each atomically.  Its behaviour is read from
``DIR/control.json`` at every command, so a test changes it while the sink
runs::

    {"delay": 5}                      seconds before the reply to DATA
    {"data_reply": "451 4.3.0 later"} reply to DATA instead of 250
    {"rcpt_replies": {"x@y": "550 5.1.1 no such user"}}
    {"mail_reply": "421 4.3.2 shutting down"}
    {"drop": true}                    close the connection once DATA arrived

``DIR/events.log`` gets a line ``<unix time> data <message-id>`` when DATA
arrived (before the delay), so a test can act "in the middle of DATA",
``<time> accepted <message-id>`` once it was accepted, and ``<time> auth
<login>`` for every AUTH the client sent.
"""

import argparse
import email
import json
import os
import signal
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.dir = directory
        self.received = os.path.join(directory, "received")
        os.makedirs(self.received, exist_ok=True)
        self.lock = threading.Lock()
        self.n = len([f for f in os.listdir(self.received) if f.endswith(".eml")])

    def control(self):
        try:
            with open(os.path.join(self.dir, "control.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def event(self, line):
        with open(os.path.join(self.dir, "events.log"), "a") as f:
            f.write("%.6f %s\n" % (time.time(), line))

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self.control().get("mail_reply")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = (self.control().get("rcpt_replies") or {}).get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        ctl = self.control()
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        msgid = email.message_from_bytes(data).get("Message-ID", "")
        self.event("data %s" % msgid)
        if ctl.get("drop"):
            server.transport.close()
            return "421 4.3.0 dropped"
        if ctl.get("delay"):
            await asyncio.sleep(float(ctl["delay"]))
        if ctl.get("data_reply"):
            return ctl["data_reply"]
        with self.lock:
            self.n += 1
            n = self.n
        base = os.path.join(self.received, "%06d" % n)
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                "tls": server.transport.get_extra_info("ssl_object") is not None,
                "auth": getattr(session, "sink_login", None)}
        for suffix, blob in ((".json", json.dumps(meta).encode()), (".eml", data)):
            with open(base + suffix + ".tmp", "wb") as f:
                f.write(blob)
            os.replace(base + suffix + ".tmp", base + suffix)
        self.event("accepted %s" % msgid)
        return "250 2.0.0 queued as %06d" % n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--auth", help="USER:PASSWORD accepted by AUTH PLAIN/LOGIN")
    args = ap.parse_args()
    sink = Sink(args.dir)
    kw = {}
    ctx = None
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
    if args.starttls:
        kw.update(tls_context=ctx, require_starttls=False)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            login = getattr(auth_data, "login", b"") or b""
            sink.event("auth %s" % login.decode("utf-8", "replace"))
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
                  and auth_data.password.decode() == password)
            if ok:
                session.sink_login = user
            return AuthResult(success=ok, handled=False)
        # aiosmtpd only counts STARTTLS as TLS for auth_require_tls: with
        # implicit TLS every connection is encrypted already
        kw.update(authenticator=authenticator, auth_required=False,
                  auth_require_tls=not (os.environ.get("SINK_AUTH_WITHOUT_TLS")
                                        or args.implicit_tls))
    controller = Controller(sink, hostname=args.host, port=args.port,
                            ssl_context=ctx if args.implicit_tls else None,
                            server_hostname="localhost", decode_data=False,
                            ready_timeout=30, **kw)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
