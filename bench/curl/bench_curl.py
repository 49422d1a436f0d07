"""kore.httpclient against httpx and blocking pycurl in threads.

    python bench/curl/bench_curl.py [--requests 1000] [--rounds 3]
                                    [--concurrency 1,50]

Starts one upstream process (a small keep-alive HTTP/1.1 server on gevent,
loopback), then for each round and each concurrency runs every client in a
process of its own, interleaved: ``kore`` (kore.httpclient on this plugin's
multi handle, one greenlet per concurrent request), ``httpx`` (one
``httpx.AsyncClient`` on asyncio, N concurrent tasks) and ``pycurl-threads``
(N threads, each doing blocking ``perform()`` on its own easy handle).
Prints requests/s and client CPU ms per 1,000 requests (medians over the
rounds) and the ratios against kore.httpclient.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)


# ---------------------------------------------------------------------------
# upstream
# ---------------------------------------------------------------------------

def upstream_main():
    from gevent import monkey
    monkey.patch_all()
    from gevent.server import StreamServer

    reply = (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
             b"content-length: 2\r\n\r\nok")

    def handle(sock, addr):
        buf = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
                n = buf.count(b"\r\n\r\n")
                if n:
                    buf = buf[buf.rindex(b"\r\n\r\n") + 4:]
                    sock.sendall(reply * n)
        except OSError:
            pass

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    sys.stdout.write("%d\n" % server.server_port)
    sys.stdout.flush()
    server.serve_forever()


# ---------------------------------------------------------------------------
# clients (each runs in a process of its own)
# ---------------------------------------------------------------------------

def client_kore(url, n, conc):
    import gevent
    from gevent.pool import Pool

    from kore.aio import drive
    import kore_curl

    async def one():
        status, body = await kore_curl.httpclient(url).get()
        assert status == 200 and body == b"ok"

    drive(one())   # warm-up: connection and handle pool
    pool = Pool(conc)
    t0 = time.perf_counter()
    c0 = time.process_time()
    for _ in range(n):
        pool.spawn(drive, one())
    pool.join(raise_error=True)
    return time.perf_counter() - t0, time.process_time() - c0


def client_httpx(url, n, conc):
    import asyncio

    import httpx

    async def main():
        limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
        async with httpx.AsyncClient(limits=limits) as client:
            r = await client.get(url)
            assert r.status_code == 200
            sem = asyncio.Semaphore(conc)

            async def one():
                async with sem:
                    r = await client.get(url)
                    assert r.status_code == 200 and r.content == b"ok"

            t0 = time.perf_counter()
            c0 = time.process_time()
            await asyncio.gather(*[one() for _ in range(n)])
            return time.perf_counter() - t0, time.process_time() - c0

    return asyncio.run(main())


def client_pycurl_threads(url, n, conc):
    import io
    import threading

    import pycurl

    counter = iter(range(n))
    lock = threading.Lock()

    def worker():
        c = pycurl.Curl()
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.NOSIGNAL, 1)
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            buf = io.BytesIO()
            c.setopt(pycurl.WRITEFUNCTION, buf.write)
            c.perform()
            assert c.getinfo(pycurl.RESPONSE_CODE) == 200 and buf.getvalue() == b"ok"
        c.close()

    # warm-up: one request
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    c.perform()
    c.close()
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    t0 = time.perf_counter()
    c0 = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, time.process_time() - c0


CLIENTS = {"kore": client_kore, "httpx": client_httpx,
           "pycurl-threads": client_pycurl_threads}


def client_main(name, url, n, conc):
    elapsed, cpu = CLIENTS[name](url, n, conc)
    sys.stdout.write(json.dumps({"elapsed": elapsed, "cpu": cpu}) + "\n")


# ---------------------------------------------------------------------------
# orchestration
# ---------------------------------------------------------------------------

def run_client(name, url, n, conc):
    out = subprocess.run([sys.executable, HERE, "--client", name, "--url", url,
                          "--requests", str(n), "--concurrency", str(conc)],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (name, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", default="1,50")
    ap.add_argument("--client")
    ap.add_argument("--url")
    ap.add_argument("--upstream", action="store_true")
    args = ap.parse_args()
    if args.upstream:
        return upstream_main()
    if args.client:
        return client_main(args.client, args.url, args.requests, int(args.concurrency))

    up = subprocess.Popen([sys.executable, HERE, "--upstream"], stdout=subprocess.PIPE,
                          text=True)
    try:
        url = "http://127.0.0.1:%d/" % int(up.stdout.readline())
        concs = [int(c) for c in args.concurrency.split(",")]
        results = {(name, c): [] for name in CLIENTS for c in concs}
        for rnd in range(args.rounds):
            for c in concs:
                for name in CLIENTS:
                    results[(name, c)].append(run_client(name, url, args.requests, c))
        print("%d requests per run, %d rounds, medians; upstream: gevent, loopback"
              % (args.requests, args.rounds))
        for c in concs:
            print("\nconcurrency %d" % c)
            print("%-16s %10s %18s %10s %10s" % ("client", "req/s", "CPU ms/1k req",
                                                  "req/s x", "CPU x"))
            base = None
            for name in CLIENTS:
                runs = results[(name, c)]
                rps = statistics.median(args.requests / r["elapsed"] for r in runs)
                cpu = statistics.median(r["cpu"] * 1000.0 * 1000 / args.requests
                                        for r in runs)
                if base is None:
                    base = (rps, cpu)
                print("%-16s %10.0f %18.1f %10.2f %10.2f"
                      % (name, rps, cpu, rps / base[0], cpu / base[1]))
        print("\nx: ratio to kore (req/s: higher is faster; CPU: higher costs more)")
    finally:
        up.kill()
        up.wait()


if __name__ == "__main__":
    main()
