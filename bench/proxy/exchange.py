"""The Python work of one upstream exchange, without sockets: the headers
sent upstream (``headers.request_headers``), the request head framed and
the nginx response of bench/proxy/run.py parsed by ``h1client``, the
headers relayed (``headers.response_headers``).  CPU time (not wall time:
steadier on a shared machine), best of 7 repeats.

    .venv/bin/python bench/proxy/exchange.py [--number 20000]
"""

import argparse
import time
import timeit

from kore_proxy import h1client as h11
from kore_proxy.headers import request_headers, response_headers

RESP = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 23:55:02 GMT\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 13\r\nConnection: keep-alive\r\n"
        b"\r\nHello, World!")
CLIENT = [("host", "127.0.0.1:8080"), ("user-agent", "wrk"), ("accept", "*/*")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--number", type=int, default=20000)
    args = ap.parse_args()
    c = h11.Connection()

    def one():
        heads = request_headers(CLIENT, "127.0.0.1", True, "http", "127.0.0.1:8080")
        c.send(h11.Request(method="GET", target="/plaintext", headers=heads))
        c.send(h11.EndOfMessage())
        c.next_event()
        c.receive_data(RESP)
        r = c.next_event()
        response_headers(r.headers.text)
        c.next_event()
        c.next_event()
        c.start_next_cycle()

    n = args.number
    best = min(timeit.repeat(one, number=n, repeat=7, timer=time.process_time))
    print("%.2f us CPU per exchange (best of 7 x %d)" % (best / n * 1e6, n))


if __name__ == "__main__":
    main()
