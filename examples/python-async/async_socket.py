"""kore.socket_wrap: an echo server run as tasks, and a handler using it.

    curl http://127.0.0.1:8888/socket?msg=hello

The listening socket is opened in the master at import time (any free port
unless ECHO_PORT is set); every worker's echo_server task accepts on it and
starts one task per connection.
"""

import os
import socket

import kore

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(os.environ.get("ECHO_PORT", "0"))))
listener.listen(128)
ECHO_PORT = listener.getsockname()[1]


async def echo_server():
    kore.coroname("echo-server")
    server = kore.socket_wrap(listener)
    while True:
        conn = await server.accept()
        kore.task_create(echo_connection(conn))


async def echo_connection(conn):
    try:
        while True:
            data = await conn.recv(4096)
            if data is None:
                break
            await conn.send(data)
    finally:
        conn.close()


@kore.route("/socket", methods=["get"], get={"msg": "^[a-zA-Z0-9 ]{1,64}$"})
async def socket_handler(req):
    req.populate_get()
    msg = (req.argument("msg") or "hello").encode()
    conn = kore.socket_wrap(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    try:
        await conn.connect("127.0.0.1", ECHO_PORT)
        await conn.send(msg)
        echoed = b""
        while len(echoed) < len(msg):
            data = await conn.recv(4096, 2000)
            if data is None:
                break
            echoed += data
    finally:
        conn.close()
    req.response(200, b"echo: " + echoed + b"\n")
