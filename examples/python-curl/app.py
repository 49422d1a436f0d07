"""Kore's asynchronous HTTP client and libcurl handle on kore for Python.

    korectl run app.py
    curl http://127.0.0.1:8888/httpclient
    curl http://127.0.0.1:8888/curl
    curl http://127.0.0.1:8888/parallel

The requests go to UPSTREAM (default: the /upstream routes of this same
server, so the example runs without network access); point it elsewhere with
``UPSTREAM=https://kore.io korectl run app.py``.  A handler waiting for a
transfer blocks only its own request: the worker keeps serving others.
"""

import os

import kore

kore.server("default", ip="127.0.0.1", port=os.environ.get("PORT", "8888"), tls=False)
kore.domain("*", attach="default")

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:%s/upstream"
                          % os.environ.get("PORT", "8888"))


@kore.route("/httpclient", methods=["get"])
async def httpclient(req):
    client = kore.httpclient(UPSTREAM)

    # A simple GET request.
    status, body = await client.get()
    kore.log(kore.LOG_INFO, "status: %d, body: %r" % (status, body))

    # The same client again, with the response headers this time.
    status, headers, body = await client.get(return_headers=True)
    kore.log(kore.LOG_INFO, "status: %d, headers: %r" % (status, headers))

    # A POST with a body and a header of our own.
    status, body = await client.post(body=b"hello world",
                                     headers={"x-my-header": "async-http"})

    # Any libcurl option, per client or per request.
    status, body = await client.get(curlopt={kore.CURLOPT_TIMEOUT_MS: 2000})

    req.response(200, b"async done: " + body + b"\n")


@kore.route("/curl", methods=["get"])
async def curl(req):
    # The raw libcurl handle: any protocol libcurl speaks.
    handle = kore.curl(UPSTREAM + "/echo")
    handle.setopt(kore.CURLOPT_TIMEOUT, 10)
    handle.setopt(kore.CURLOPT_HTTPHEADER, ["x-from: kore.curl"])
    handle.setbody(b"uploaded with kore.curl")

    try:
        data = await handle.run()
    except RuntimeError as exc:
        req.response(502, str(exc).encode())
        return

    req.response(200, data + b"\n")


async def fetch(i):
    status, body = await kore.httpclient(UPSTREAM + "/slow?i=%d" % i).get()
    return status


@kore.route("/parallel", methods=["get"])
async def parallel(req):
    # Ten requests at once; the upstream takes 0.5 s for each.
    results = await kore.gather(*[fetch(i) for i in range(10)])
    req.response(200, ("%r\n" % (results,)).encode())


# -- the upstream this example talks to by default ----------------------------

@kore.route("/upstream", methods=["get", "post"])
def upstream(req):
    req.response(200, b"hello from the upstream")


@kore.route("/upstream/echo", methods=["put", "post"])
def upstream_echo(req):
    req.response(200, b"upstream got: " + req.body)


@kore.route("/upstream/slow", methods=["get"])
async def upstream_slow(req):
    await kore.suspend(500)
    req.response(200, b"slow")
