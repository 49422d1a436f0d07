"""Test app: POST /send with a JSON body composes and sends one message.

The SMTP server comes from SMTP (host:port), SMTP_USER, SMTP_PASSWORD,
SMTP_SSL, SMTP_MAX_RETRY and SMTP_KEEP_DAYS (enable_smtpda's arguments);
SMTP_NAMED declares more servers ("name,host:port,user,password,ssl", several
separated by ";"); SMTPDA_CONFIG is a JSON object of options set as
kore.config attributes; every other smtpda option comes from KORE_SMTPDA_*
variables or a kore.conf section.
"""

import json
import os
import time

import kore

if os.environ.get("SMTP"):
    kore.enable_smtpda(os.environ["SMTP"], os.environ.get("SMTP_USER"),
                       os.environ.get("SMTP_PASSWORD"),
                       ssl=os.environ.get("SMTP_SSL") == "1",
                       max_retry=int(os.environ.get("SMTP_MAX_RETRY", "10")),
                       keep_days=float(os.environ.get("SMTP_KEEP_DAYS", "3")))
for named in filter(None, os.environ.get("SMTP_NAMED", "").split(";")):
    name, server, user, password, ssl = named.split(",")
    kore.smtpda_server(name, server, user or None, password or None, ssl=ssl == "1")
for option, value in json.loads(os.environ.get("SMTPDA_CONFIG", "{}")).items():
    setattr(kore.config, option, value)


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
