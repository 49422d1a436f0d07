"""E-mail from a handler: kore.email() and the SMTP delivery agent.

    SMTP=127.0.0.1:2525 korectl run --bind 127.0.0.1:8888 examples/email/app.py
    curl -d 'to=you@example.com&name=Zoë' http://127.0.0.1:8888/welcome
    korectl smtpda status --bind 127.0.0.1:8888 examples/email/app.py

The handler returns as soon as the message is in the spool (a few ms); the
agent process delivers it, retrying while the server is down.  Credentials
come from the environment (KORE_SMTPDA_PASSWORD works too) and are never
written to the spool.  The spool is examples/email/smtpda-spool unless
KORE_SMTPDA_SPOOL names another directory.

For a local SMTP server to look at, run aiosmtpd's debugging server:
    python -m aiosmtpd -n -l 127.0.0.1:2525
"""

import html
import os
from urllib.parse import parse_qs

import kore

HERE = os.path.dirname(os.path.abspath(__file__))

kore.enable_smtpda(os.environ.get("SMTP", "127.0.0.1:25"), os.environ.get("SMTP_USER"),
                   os.environ.get("SMTP_PASSWORD"), max_retry=10, keep_days=3)

HTML = """<html><body>
<p><img src="cid:logo" alt="logo"> Welcome, {name}!</p>
<p>Your account is ready.</p>
</body></html>"""


@kore.route("/welcome", methods=["post"])
def welcome(req):
    form = parse_qs(req.body.decode("utf-8"))
    to = form.get("to", [""])[0]
    name = form.get("name", ["friend"])[0]
    try:
        e = kore.email("Welcome, %s" % name, "Kore example <noreply@example.com>",
                       "%s <%s>" % (name, to))
    except ValueError as exc:
        req.response(400, ("%s\n" % exc).encode())
        return
    e.add_content("Welcome, %s! Your account is ready." % name, "text/plain")
    e.add_content(HTML.format(name=html.escape(name)), "text/html")
    e.add_attachment(os.path.join(HERE, "logo.png"), cid="logo")
    message_id = e.send()
    req.response(202, ("queued %s\n" % message_id).encode())
