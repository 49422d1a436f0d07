"""A raw ASGI app (uvicorn, granian): no framework."""

import json

PLAIN = [(b"content-type", b"text/plain"), (b"content-length", b"13")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/json":
        body = json.dumps({"message": "Hello, World!"}).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
    else:
        body = b"Hello, World!"
        headers = PLAIN
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
