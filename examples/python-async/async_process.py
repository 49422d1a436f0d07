"""kore.proc: run a program and return its output.

    curl http://127.0.0.1:8888/proc
    curl http://127.0.0.1:8888/proc/timeout
    curl --data-binary @app.py http://127.0.0.1:8888/proc/wc

stdout and stderr arrive on one pipe.  A cancelled handler (the client went
away) kills and reaps the process it was waiting for.
"""

import json
import os

import kore

HERE = os.path.dirname(os.path.abspath(__file__))


@kore.route("/proc", methods=["get"])
async def proc_handler(req):
    proc = kore.proc('ls -1 "%s"' % HERE)
    output = b""
    while True:
        try:
            chunk = await proc.recv(4096, 1000)
        except TimeoutError:
            continue          # nothing within a second: keep waiting
        if chunk is None:
            break             # EOF: the program closed its output
        output += chunk
    retcode = await proc.reap()
    body = {"pid": proc.pid, "retcode": retcode, "stdout": output.decode()}
    req.response(200, json.dumps(body, indent=2).encode())


@kore.route("/proc/timeout", methods=["get"])
async def proc_timeout(req):
    # The process must exit within 200 ms.
    proc = kore.proc("sleep 10", 200)
    try:
        await proc.reap()
        req.response(200, b"exited in time\n")
    except TimeoutError as exc:
        proc.kill()
        status = await proc.reap()
        req.response(504, b"%s (killed, status %d)\n" % (str(exc).encode(), status))


@kore.route("/proc/wc", methods=["post"])
async def proc_wc(req):
    # Feed the request body to wc -c through its stdin.
    proc = kore.proc("wc -c")
    await proc.send(req.body)
    proc.close_stdin()
    count = await proc.recv(64)
    await proc.reap()
    req.response(200, count.strip() + b" bytes\n")
