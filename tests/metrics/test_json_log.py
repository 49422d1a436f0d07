"""--log-format json over a real server: every error-log line is one JSON
object with OpenTelemetry field names, and a header value with quotes and a
newline logged by the application cannot forge a field or a line."""

import json
import os

import httpx

from kore_testing import KoreServer, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def test_json_error_log(tmp_path):
    s = KoreServer(tmp_path, os.path.join(HERE, "apps", "app.py"), workers=1,
                   args=["--log-format", "json"])
    try:
        s.wait_ready(1)
        evil = 'x", "severity_text": "ERROR"}\n{"forged": "yes'
        # httpx refuses a raw newline in a header: percent-decoding is not
        # kore's, so send the bytes ourselves
        import socket
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(b"GET /logheader HTTP/1.1\r\nHost: t\r\nX-Note: "
                      + evil.replace("\n", "\\n").encode() + b"\r\nConnection: close\r\n\r\n")
            while c.recv(65536):
                pass
        r = httpx.get(s.url + "/logheader", headers={"x-note": 'say "hi"'}, timeout=10)
        assert r.status_code == 200
        assert wait_for(lambda: 'say \\"hi\\"' in s.log(), 10)
    finally:
        s.stop()
    lines = [l for l in s.log().splitlines() if l.strip()]
    recs = [json.loads(l) for l in lines]       # every line is JSON
    for r in recs:
        assert set(r) == {"timestamp", "severity_text", "severity_number", "body",
                          "process.pid", "process.role"}
        assert "forged" not in r
    notes = [r for r in recs if r["body"].startswith("client says")]
    assert [r["body"] for r in notes][-1] == 'client says say "hi"'
    assert notes[0]["severity_text"] == "NOTICE" and notes[0]["process.role"] == "wrk 1"
    assert any(r["body"].startswith("worker 1 (pid") for r in recs)
