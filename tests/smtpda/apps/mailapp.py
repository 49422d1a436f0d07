"""Test app: POST /send with a JSON body composes and sends one message.

The SMTP server comes from SMTP (host:port), SMTP_USER, SMTP_PASSWORD and
SMTP_SSL; every other smtpda option from KORE_SMTPDA_* variables.
"""

import json
import os
import time

import kore

if os.environ.get("SMTP"):
    kore.enable_smtpda(os.environ["SMTP"], os.environ.get("SMTP_USER"),
                       os.environ.get("SMTP_PASSWORD"),
                       ssl=os.environ.get("SMTP_SSL") == "1")
if os.environ.get("SMTP_NAMED"):
    name, server, user, password, ssl = os.environ["SMTP_NAMED"].split(",")
    kore.smtpda_server(name, server, user or None, password or None, ssl=ssl == "1")


@kore.route("/send", methods=["post"])
def send(req):
    spec = json.loads(req.body)
    start = time.perf_counter()
    e = kore.email(spec.get("subject", "test"), spec.get("from", "Kore <kore@example.com>"),
                   spec["to"])
    if spec.get("smtp"):
        e.set_smtp(*spec["smtp"])
    for name in ("cc", "bcc"):
        if spec.get(name):
            e.set_header(name.capitalize(), spec[name])
    for text, mimetype in spec.get("contents", [["hello", "text/plain"]]):
        e.add_content(text, mimetype)
    for path, name, cid in spec.get("attachments", []):
        e.add_attachment(path, name=name, cid=cid)
    message_id = e.send()
    ms = (time.perf_counter() - start) * 1000
    req.response(200, json.dumps({"message_id": message_id, "ms": ms}).encode())
