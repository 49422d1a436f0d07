"""A raw RSGI app (granian's own interface): no framework."""

import json

PLAIN = [("content-type", "text/plain")]
JSON = [("content-type", "application/json")]


async def app(scope, proto):
    if scope.proto != "http":
        return
    if scope.path == "/json":
        proto.response_bytes(200, JSON, json.dumps({"message": "Hello, World!"}).encode())
    else:
        proto.response_bytes(200, PLAIN, b"Hello, World!")
