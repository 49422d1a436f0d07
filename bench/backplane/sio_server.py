"""The python-socketio side: one gevent process, RedisManager on the same
redis-server.  Events: "sub" joins the room "bench", "pub" emits "m" to it.
Usage: sio_server.py PORT REDIS_URL"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

import socketio  # noqa: E402
from gevent import pywsgi  # noqa: E402

port, url = int(sys.argv[1]), sys.argv[2]
mgr = socketio.RedisManager(url)
sio = socketio.Server(async_mode="gevent", client_manager=mgr, transports=["websocket"])


@sio.on("sub")
def sub(sid, room):
    sio.enter_room(sid, room)
    return "ok"


@sio.on("pub")
def pub(sid, data):
    room, _, msg = data.partition(":")
    sio.emit("m", msg, room=room)


app = socketio.WSGIApp(sio)
pywsgi.WSGIServer(("127.0.0.1", port), app, log=None).serve_forever()
