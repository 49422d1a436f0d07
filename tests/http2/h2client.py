"""A raw HTTP/2 client for the tests: the h2 library (client side) over a
blocking socket, so a test controls every frame (resets, windows, PINGs)."""

import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events as ev
import h2.exceptions
from h2.settings import SettingCodes

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class H2Client:
    def __init__(self, port, tls=False, host="127.0.0.1", settings=None, timeout=10.0,
                 auto_ack=True):
        raw = socket.create_connection((host, port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            raw = ctx.wrap_socket(raw, server_hostname="localhost")
            assert raw.selected_alpn_protocol() == "h2"
        self.sock = raw
        self.port = port
        self.authority = "%s:%d" % (host, port)
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None))
        if settings:
            self.h2.local_settings = h2.settings.Settings(client=True, initial_values=settings)
            self.h2.max_inbound_frame_size = self.h2.local_settings.max_frame_size
        self.h2.initiate_connection()
        self.auto_ack = auto_ack
        self.events = []
        self.responses = {}     # sid -> {"headers": [...], "data": bytearray, "ended": bool}
        self.resets = {}        # sid -> error code
        self.goaway = None
        self.closed = False
        self.remote_settings = {}
        self.data_frames = []   # (sid, length)
        self.pings = 0
        self.raw_mode = False
        self.pushed = {}
        self.rbuf = b""
        self.flush()

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", headers=(), body=None, end=True, scheme="http"):
        sid = self.h2.get_next_available_stream_id()
        hs = [(":method", method), (":path", path), (":scheme", scheme),
              (":authority", self.authority)] + list(headers)
        self.h2.send_headers(sid, hs, end_stream=end and body is None)
        if body is not None:
            self.send_body(sid, body, end)
        self.flush()
        self.responses[sid] = {"headers": [], "informational": [], "data": bytearray(),
                               "ended": False}
        return sid

    def raw_request(self, path):
        """HEADERS for a new stream sent past h2's state machine (which will
        not open streams after a GOAWAY): the server must refuse it."""
        from hyperframe.frame import HeadersFrame
        sid = self.h2.highest_outbound_stream_id + 2
        self.h2.highest_outbound_stream_id = sid
        f = HeadersFrame(sid)
        f.data = self.h2.encoder.encode([(":method", "GET"), (":path", path),
                                         (":scheme", "http"), (":authority", self.authority)])
        f.flags = {"END_HEADERS", "END_STREAM"}
        self.sock.sendall(f.serialize())
        self.responses[sid] = {"headers": [], "informational": [], "data": bytearray(),
                               "ended": False}
        return sid

    def send_body(self, sid, body, end=True):
        """Send ``body`` within the server's windows (reading as needed)."""
        off = 0
        while off < len(body) or (end and not body):
            if sid in self.resets or self.closed:
                return          # the server refused the rest
            w = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            if w <= 0:
                self.flush()
                self.read_once()
                continue
            chunk = body[off:off + w]
            off += len(chunk)
            self.h2.send_data(sid, chunk, end_stream=end and off >= len(body))
            if not body:
                break
        self.flush()

    def reset(self, sid, code=8):
        self.h2.reset_stream(sid, code)
        self.flush()

    def read_once(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        if self.raw_mode:
            events = self._raw_events(data)
        else:
            events = self.h2.receive_data(data)
        for e in events:
            self.events.append(e)
            self.on_event(e)
        if self.auto_ack:
            self.flush()
        return True

    def _raw_events(self, data):
        # after a GOAWAY h2's client state machine takes no more frames (nor
        # would it open the stream raw_request sends): parse them here
        from hyperframe.frame import (DataFrame, Frame, HeadersFrame, RstStreamFrame,
                                      GoAwayFrame)
        data = self.rbuf + data
        out = []
        while len(data) >= 9:
            f, length = Frame.parse_frame_header(memoryview(data[:9]))
            if len(data) < 9 + length:
                break
            f.parse_body(memoryview(data[9:9 + length]))
            data = data[9 + length:]
            sid = f.stream_id
            if isinstance(f, RstStreamFrame):
                out.append(ev.StreamReset(stream_id=sid, error_code=f.error_code))
            elif isinstance(f, HeadersFrame):
                e = ev.ResponseReceived(stream_id=sid,
                                        headers=self.h2.decoder.decode(f.data, raw=True))
                out.append(e)
                if "END_STREAM" in f.flags:
                    out.append(ev.StreamEnded(stream_id=sid))
            elif isinstance(f, DataFrame):
                out.append(ev.DataReceived(stream_id=sid, data=f.data,
                                           flow_controlled_length=0))
                if "END_STREAM" in f.flags:
                    out.append(ev.StreamEnded(stream_id=sid))
            elif isinstance(f, GoAwayFrame):
                out.append(ev.ConnectionTerminated(error_code=f.error_code,
                                                   last_stream_id=f.last_stream_id))
        self.rbuf = data
        return out

    def on_event(self, e):
        t = type(e)
        if t is ev.ResponseReceived or t is ev.TrailersReceived:
            self.responses.setdefault(e.stream_id, {"headers": [], "informational": [],
                                                    "data": bytearray(), "ended": False})
            self.responses[e.stream_id]["headers"] = e.headers
        elif t is ev.InformationalResponseReceived:
            self.responses[e.stream_id]["informational"].append(e.headers)
        elif t is ev.DataReceived:
            self.data_frames.append((e.stream_id, len(e.data)))
            self.responses[e.stream_id]["data"] += e.data
            if self.auto_ack and not self.raw_mode:
                self.h2.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        elif t is ev.StreamEnded:
            self.responses[e.stream_id]["ended"] = True
        elif t is ev.StreamReset:
            self.resets[e.stream_id] = e.error_code
        elif t is ev.ConnectionTerminated:
            self.goaway = (e.error_code, e.last_stream_id)
            self.raw_mode = True
        elif t is ev.RemoteSettingsChanged:
            for k, v in e.changed_settings.items():
                self.remote_settings[k] = v.new_value
        elif t is ev.PushedStreamReceived:
            self.pushed[e.pushed_stream_id] = e.headers
            self.responses[e.pushed_stream_id] = {"headers": [], "informational": [],
                                                  "data": bytearray(), "ended": False}
        elif t is ev.PingReceived:
            self.pings += 1

    def until(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                if not self.read_once(timeout=left):
                    return pred()
            except socket.timeout:
                return pred()
        return True

    def response(self, sid, timeout=10.0):
        """(status, headers dict, body) of stream ``sid`` once it ended."""
        ok = self.until(lambda: self.responses[sid]["ended"] or sid in self.resets
                        or self.closed, timeout)
        assert ok, "no response on stream %d" % sid
        r = self.responses[sid]
        hs = {}
        for n, v in r["headers"]:
            hs.setdefault(n.decode(), v.decode())
        return int(hs.get(":status", 0)), hs, bytes(r["data"])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def settings_codes():
    return SettingCodes
