"""A raw ASGI app (granian, hypercorn): /plaintext and /1m."""

PLAIN = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
MIB = b"x" * (1 << 20)
BIG = [(b"content-length", str(len(MIB)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/1m":
        await send({"type": "http.response.start", "status": 200, "headers": BIG})
        await send({"type": "http.response.body", "body": MIB})
        return
    await send({"type": "http.response.start", "status": 200, "headers": PLAIN})
    await send({"type": "http.response.body", "body": b"Hello, World!"})
