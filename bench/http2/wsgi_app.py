"""A raw WSGI app (gunicorn): /plaintext and /1m."""

MIB = b"x" * (1 << 20)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/1m":
        start_response("200 OK", [("Content-Length", str(len(MIB)))])
        return [MIB]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, World!"]
