"""A raw WSGI app (gunicorn with the gevent worker)."""

import json


def app(environ, start_response):
    if environ["PATH_INFO"] == "/json":
        body = json.dumps({"message": "Hello, World!"}).encode()
        ctype = "application/json"
    else:
        body = b"Hello, World!"
        ctype = "text/plain"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
