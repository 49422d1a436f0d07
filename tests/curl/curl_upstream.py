"""Small HTTP upstreams for the curl plugin's tests, on gevent.

``Upstream`` is an HTTP/1.1 server (TCP, TLS or a unix socket) that counts
the connections it accepted and records the requests it saw; with TLS and
``h2=True`` it speaks HTTP/2 to clients that offer it through ALPN.

Routes: ``/slow?ms=N`` answers after N ms (default 1000); ``/hang`` never
answers and records when the client went away; ``/echo`` returns the request
as JSON; ``/big?n=N`` returns N bytes; ``/status/NNN``; anything else "ok".

Run as a script it serves in the foreground on loopback and prints one JSON
line with its addresses: ``python upstream.py [--tls CERTDIR]``.
"""

import json
import ssl
import sys
import time
from urllib.parse import parse_qs, urlsplit

import gevent
from gevent import socket as gsocket
from gevent.lock import Semaphore
from gevent.server import StreamServer


class Request:
    def __init__(self, method, target, headers, body, proto):
        self.method = method
        self.target = target
        self.headers = headers      # lower-case name -> value (last wins)
        self.body = body
        self.proto = proto
        u = urlsplit(target)
        self.path = u.path
        self.query = {k: v[-1] for k, v in parse_qs(u.query).items()}


class Upstream:
    def __init__(self, host="127.0.0.1", unix=None, ssl_context=None, h2=False):
        self.connections = 0
        self.open = 0
        self.requests = []
        self.aborted = []            # paths whose client went away early
        self.protocols = []          # "http/1.1" or "h2" per connection
        self.h2 = h2
        if ssl_context is not None and h2:
            ssl_context.set_alpn_protocols(["h2", "http/1.1"])
        self.ssl_context = ssl_context
        if unix is not None:
            lsock = gsocket.socket(gsocket.AF_UNIX, gsocket.SOCK_STREAM)
            lsock.bind(unix)
            lsock.listen(128)
            listener = lsock
        else:
            listener = (host, 0)
        if ssl_context is not None:
            self.server = StreamServer(listener, self._handle, ssl_context=ssl_context)
        else:
            self.server = StreamServer(listener, self._handle)
        self.server.start()
        self.unix = unix
        if unix is None:
            self.port = self.server.server_port
            scheme = "https" if ssl_context is not None else "http"
            self.url = "%s://%s:%d" % (scheme, host, self.port)
        else:
            self.port = None
            self.url = "http://localhost"

    def stop(self):
        self.server.stop(timeout=1)

    # -- connection handling -------------------------------------------------

    def _handle(self, sock, addr):
        self.connections += 1
        self.open += 1
        try:
            if getattr(sock, "selected_alpn_protocol", None) and \
                    sock.selected_alpn_protocol() == "h2":
                self.protocols.append("h2")
                self._serve_h2(sock)
            else:
                self.protocols.append("http/1.1")
                self._serve_h1(sock)
        except (OSError, ssl.SSLError):
            pass
        finally:
            self.open -= 1
            try:
                sock.close()
            except OSError:
                pass

    def _serve_h1(self, sock):
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while True:
                    while b"\r\n" not in buf:
                        buf += sock.recv(65536)
                    size, buf = buf.split(b"\r\n", 1)
                    size = int(size.split(b";")[0], 16)
                    while len(buf) < size + 2:
                        buf += sock.recv(65536)
                    body += buf[:size]
                    buf = buf[size + 2:]
                    if size == 0:
                        break
            else:
                n = int(headers.get("content-length", "0"))
                while len(buf) < n:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:n], buf[n:]
            req = Request(method, target, headers, body, "http/1.1")
            self.requests.append(req)
            status, rheaders, rbody = self._respond(req, sock)
            if status is None:
                return
            close = headers.get("connection", "").lower() == "close"
            out = ["HTTP/1.1 %d X" % status]
            for k, v in rheaders:
                out.append("%s: %s" % (k, v))
            out.append("content-length: %d" % len(rbody))
            if close:
                out.append("connection: close")
            data = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
            if method != "HEAD":
                data += rbody
            sock.sendall(data)
            if close:
                return

    def _serve_h2(self, sock):
        import h2.config
        import h2.connection
        import h2.events

        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        lock = Semaphore()
        sock.sendall(conn.data_to_send())
        streams = {}

        def answer(stream_id, req):
            status, rheaders, rbody = self._respond(req, None)
            with lock:
                hdrs = [(":status", str(status)), ("content-length", str(len(rbody)))]
                hdrs += [(k.lower(), v) for k, v in rheaders]
                conn.send_headers(stream_id, hdrs, end_stream=(req.method == "HEAD" or not rbody))
                if req.method != "HEAD" and rbody:
                    conn.send_data(stream_id, rbody, end_stream=True)
                sock.sendall(conn.data_to_send())

        while True:
            data = sock.recv(65536)
            if not data:
                return
            with lock:
                events = conn.receive_data(data)
            for ev in events:
                if isinstance(ev, h2.events.RequestReceived):
                    hd = {k.decode() if isinstance(k, bytes) else k:
                          v.decode() if isinstance(v, bytes) else v for k, v in ev.headers}
                    streams[ev.stream_id] = [hd, b""]
                elif isinstance(ev, h2.events.DataReceived):
                    streams[ev.stream_id][1] += ev.data
                    with lock:
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if getattr(ev, "stream_ended", None) is not None or \
                        isinstance(ev, h2.events.StreamEnded):
                    sid = ev.stream_id
                    if sid in streams:
                        hd, body = streams.pop(sid)
                        req = Request(hd[":method"], hd[":path"],
                                      {k: v for k, v in hd.items() if not k.startswith(":")},
                                      body, "h2")
                        self.requests.append(req)
                        gevent.spawn(answer, sid, req)
            with lock:
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)

    # -- routes ------------------------------------------------------------------

    def _respond(self, req, sock):
        path = req.path
        if path == "/slow":
            gevent.sleep(int(req.query.get("ms", "1000")) / 1000.0)
            return 200, [], b"slow"
        if path == "/hang":
            # wait for the client to go away (EOF) or 30 s
            if sock is not None:
                try:
                    with gevent.Timeout(30):
                        data = sock.recv(1)
                        if not data:
                            self.aborted.append(req.target)
                            return None, None, None
                except gevent.Timeout:
                    pass
            else:
                gevent.sleep(30)
            return 200, [], b"late"
        if path == "/echo":
            doc = {"method": req.method, "path": req.target, "headers": req.headers,
                   "body": req.body.decode("latin-1"), "proto": req.proto}
            return 200, [("content-type", "application/json"), ("x-upstream", "yes")], \
                json.dumps(doc).encode()
        if path == "/big":
            return 200, [], b"x" * int(req.query.get("n", "0"))
        if path.startswith("/status/"):
            return int(path[8:]), [], b"status"
        if path == "/stats":
            seen = [r.path for r in self.requests if r.path != "/stats"]
            return 200, [], json.dumps({"connections": self.connections,
                                        "aborted": self.aborted,
                                        "requests": len(seen),
                                        "paths": seen}).encode()
        return 200, [("x-upstream", "yes")], b"ok"


def main(argv):
    from gevent import monkey
    monkey.patch_all()
    doc = {}
    plain = Upstream()
    doc["http"] = plain.url
    if "--unix" in argv:
        path = argv[argv.index("--unix") + 1]
        Upstream(unix=path)
        doc["unix"] = path
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1:])
