"""Upload throttling with socketify's req.pause() / req.resume().

Each chunk of a request body goes through an on_body_chunk hook, which
writes it to a file and pauses reading from the client for as long as the
chunk would take at RATE bytes per second; TCP flow control then holds the
client back.  Time spent paused does not count against http_body_timeout.

    korectl run examples/upload-throttle/app.py
    head -c 2000000 /dev/urandom > /tmp/blob
    curl -s --data-binary @/tmp/blob http://127.0.0.1:8888/upload
"""

import os
import tempfile

import gevent
import kore

RATE = 1000000                  # bytes per second per upload

kore.server("default", ip="127.0.0.1", port="8888", tls=False)
kore.config.http_body_max = 64 * 1024 * 1024
domain = kore.domain("*", attach="default")


def on_headers(req):
    fd, req.tmpname = tempfile.mkstemp(prefix="upload.")
    req.out = os.fdopen(fd, "wb")
    req.received = 0
    return True


def on_body_chunk(req, data):
    req.out.write(data)
    req.received += len(data)
    req.pause()
    gevent.spawn_later(len(data) / RATE, req.resume)
    return True


def on_free(req):
    out = getattr(req, "out", None)
    if out is not None:
        out.close()
        os.unlink(req.tmpname)


def upload(req):
    req.send({"received": req.received})


domain.route("/upload", upload, methods=["post"],
             hooks={"on_headers": on_headers, "on_body_chunk": on_body_chunk,
                    "on_free": on_free})
