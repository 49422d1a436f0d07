"""SELECT 1 through kore.dbquery's pool against a raw psycopg2 connection.

    .venv/bin/python bench/pgsql/bench.py [--seconds 3] [--rounds 3] [--clients 1]

Starts a throwaway PostgreSQL and one ``korectl run`` worker serving two
routes that each run ``SELECT 1`` per request: ``/pool`` with ``await
kore.dbquery`` and ``/raw`` with a psycopg2 connection opened by the handler
code itself (one per worker, used directly; with several clients a lock keeps
it to one query at a time and the pool gets ``pgsql_conn_max = 1`` so both
sides run on one connection).  Rounds alternate between the two routes on
keep-alive connections and the best round of each is compared.
"""

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "pgsql"))

sys.path.insert(0, os.path.dirname(HERE))

from benchlib import stop_group  # noqa: E402
from pgcluster import Cluster, free_port  # noqa: E402

APP = r'''
import os
import gevent.lock
import psycopg2
import kore

kore.config.pgsql_conn_max = int(os.environ["BENCH_CONN_MAX"])
kore.dbsetup("db", os.environ["BENCH_DSN"])
raw = {}
lock = gevent.lock.Semaphore()

@kore.route("/pool", methods=["get"])
async def pool(req):
    rows = await kore.dbquery("db", "SELECT 1 AS one")
    req.response(200, rows[0]["one"].encode())

@kore.route("/raw", methods=["get"])
async def raw_(req):
    with lock:
        conn = raw.get("c")
        if conn is None:
            conn = raw["c"] = psycopg2.connect(os.environ["BENCH_DSN"])
            conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SELECT 1 AS one")
        one = cur.fetchall()[0][0]
    req.response(200, str(one).encode())
'''


def load(port, path, seconds, clients):
    counts = [0] * clients
    errors = []
    stop = time.monotonic() + seconds

    def client(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            while time.monotonic() < stop:
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200 or body != b"1":
                    errors.append((r.status, body))
                    return
                counts[i] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("%s failed: %r" % (path, errors[:3]))
    return sum(counts) / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=1)
    args = ap.parse_args()

    pg = Cluster.create()
    tmp = tempfile.mkdtemp(prefix="kore-pgsql-bench-")
    proc = None
    try:
        app = os.path.join(tmp, "app.py")
        with open(app, "w") as f:
            f.write(APP)
        port = free_port()
        env = dict(os.environ, BENCH_DSN=pg.dsn, BENCH_CONN_MAX="1")
        korectl = os.path.join(os.path.dirname(sys.executable), "korectl")
        log = open(os.path.join(tmp, "korectl.log"), "wb")
        proc = subprocess.Popen([korectl, "run", "--workers", "1", "--bind",
                                 "127.0.0.1:%d" % port, app], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/pool")
                c.getresponse().read()
                c.close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("korectl did not start:\n" + open(log.name).read())
                time.sleep(0.1)
        load(port, "/pool", 0.5, args.clients)   # warm up both sides
        load(port, "/raw", 0.5, args.clients)
        best = {"/pool": 0.0, "/raw": 0.0}
        for r in range(args.rounds):
            for path in ("/pool", "/raw"):
                rate = load(port, path, args.seconds, args.clients)
                best[path] = max(best[path], rate)
                print("round %d %-5s %8.0f req/s" % (r + 1, path, rate), flush=True)
        ratio = best["/pool"] / best["/raw"]
        print("best: pool %.0f req/s, raw %.0f req/s, clients %d" % (
            best["/pool"], best["/raw"], args.clients))
        print("ratio pool/raw = %.2f (target >= 0.80)" % ratio)
    finally:
        if proc is not None:
            stop_group(proc, 10)
        pg.destroy()


if __name__ == "__main__":
    main()
