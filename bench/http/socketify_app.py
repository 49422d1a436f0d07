"""A raw socketify.py app (its native interface, the one its authors
benchmark), started by ``python -m socketify socketify_app:run``."""

import json


def plaintext(res, req):
    res.write_header("Content-Type", "text/plain")
    res.end(b"Hello, World!")


def json_route(res, req):
    res.write_header("Content-Type", "application/json")
    res.end(json.dumps({"message": "Hello, World!"}).encode())


def run(app):
    app.get("/plaintext", plaintext)
    app.get("/json", json_route)
