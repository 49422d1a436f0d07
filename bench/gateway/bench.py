"""The gateway's cost: one route with a valid HS256 token against the same
route without auth (wrk, one worker each), and PyJWT's decode per token.

    python bench/gateway/bench.py [--rounds 5] [--duration 10] [--connections 64]

Cases, all served by ``korectl run --workers 1`` on this machine:

* ``no-plugin``   KORE_PLUGINS=http: the gateway is not installed, GET /plain;
* ``public``      the gateway enabled, GET /plain with ``auth=False``;
* ``token``       the same server, GET /secure with ``Authorization: Bearer <HS256 JWT>``;
* ``token-nocache`` the same with ``token_cache=0`` (PyJWT decodes every token).

``public`` and ``token`` are two routes of the same server.  Each round
starts the servers one at a time in a shuffled order (only one is alive at
any time), warms each case up, runs wrk once per case in a shuffled order
and stops the server; the summary prints the median req/s and each one's
ratio to ``no-plugin``, and the median of the rounds' token/public ratios
(both measured within one server run, so a machine that slows down between
runs moves both).  Then the
microbenchmark: microseconds per verification (HS256, RS256) through the
gateway's Verifier with and without its verified-token cache.
"""

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.dirname(HERE))

from benchlib import free_port, group_cpu, stop_group, wait_port  # noqa: E402

SECRET = "bench-secret-bench-secret-bench-0001"


def servers():
    """(server, env, [(case, path, token), ...]): ``public`` and ``token``
    are two routes of one server, measured in the same run."""
    import jwt
    tok = jwt.encode({"sub": "bench", "roles": ["user"],
                      "exp": int(time.time()) + 86400}, SECRET)
    base = dict(os.environ)
    return [
        ("no-plugin", dict(base, KORE_PLUGINS="http", BENCH_GATEWAY="0"),
         [("no-plugin", "/plain", None)]),
        ("gateway", dict(base), [("public", "/plain", None), ("token", "/secure", tok)]),
        ("gateway-nocache", dict(base, BENCH_TOKEN_CACHE="0"),
         [("token-nocache", "/secure", tok)]),
    ]


def start(env):
    port = free_port()
    cmd = [os.path.join(BIN, "korectl"), "run", "--bind", "127.0.0.1:%d" % port,
           "--workers", "1", "--log-level", "warning", os.path.join(HERE, "app.py")]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        stop_group(proc)
        raise SystemExit("server did not start: %s" % " ".join(cmd))
    return proc, port


def wrk(port, path, token, duration, connections):
    cmd = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % duration]
    if token:
        cmd += ["-H", "Authorization: Bearer " + token]
    cmd.append("http://127.0.0.1:%d%s" % (port, path))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit("%s answered %s non-2xx responses" % (path, non2xx.group(1)))
    return (float(m.group(1)) if m else float("nan"),
            int(total.group(1)) if total else 0)


def microbench(n=20000):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from kore_gateway import config
    from kore_gateway.tokens import Verifier
    import tempfile
    from cryptography.hazmat.primitives import serialization
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with tempfile.NamedTemporaryFile(suffix=".pem", delete=False) as f:
        f.write(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        pub = f.name
    exp = int(time.time()) + 3600
    rows = []
    for name, kw, tok in (
            ("HS256", {"secure_key": SECRET}, jwt.encode({"sub": "a", "exp": exp}, SECRET)),
            ("RS256", {"key_file": pub}, jwt.encode({"sub": "a", "exp": exp}, key,
                                                    algorithm="RS256"))):
        for cache in (0, 4096):
            config.reset()
            config.enable_gateway(True, token_cache=cache, **kw)
            v = Verifier(config.GATEWAY)
            count = n if cache or name == "HS256" else n // 10
            t0 = time.perf_counter()
            for _ in range(count):
                v.verify(tok)
            rows.append((name, cache, (time.perf_counter() - t0) / count * 1e6))
    os.unlink(pub)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    table = servers()
    results = {case: [] for _s, _e, cases in table for case, *_ in cases}
    cpu = {case: [] for case in results}
    paired = []             # token / public of each round (the same server run)
    for rnd in range(args.rounds):
        order = list(table)
        random.shuffle(order)
        for server, env, cases in order:
            proc, port = start(env)         # one server alive at a time
            try:
                for _case, path, tok in cases:
                    wrk(port, path, tok, args.warmup, args.connections)
                got = {}
                for case, path, tok in random.sample(cases, len(cases)):
                    c0 = group_cpu(proc.pid)
                    rps, total = wrk(port, path, tok, args.duration, args.connections)
                    used = group_cpu(proc.pid) - c0
                    results[case].append(rps)
                    cpu[case].append(used / max(1, total) * 1e6)
                    got[case] = rps
                    print("round %d %-14s %9.0f req/s  %6.1f us CPU/request"
                          % (rnd + 1, case, rps, cpu[case][-1]), flush=True)
                if "token" in got:
                    paired.append(got["token"] / got["public"])
            finally:
                stop_group(proc)
    base = statistics.median(results["no-plugin"])
    cbase = statistics.median(cpu["no-plugin"])
    print("\nmedians over %d rounds (wrk -t1 -c%d -d%ds, 1 worker); CPU: the server's "
          "user+system microseconds per request" % (args.rounds, args.connections,
                                                    args.duration))
    for name, vals in results.items():
        med = statistics.median(vals)
        c = statistics.median(cpu[name])
        print("  %-14s %9.0f req/s (%5.1f%%)  %6.1f us CPU/request (%5.1f%%)"
              % (name, med, 100.0 * med / base, c, 100.0 * c / cbase))
    for a, b in (("token", "public"), ("token", "no-plugin"), ("public", "no-plugin")):
        ra = statistics.median(results[a])
        rb = statistics.median(results[b])
        ca = statistics.median(cpu[a])
        cb = statistics.median(cpu[b])
        print("  %s vs %s: %.1f%% fewer req/s; %.1f%% fewer requests per CPU second"
              % (a, b, 100.0 * (1 - ra / rb), 100.0 * (1 - cb / ca)))
    print("  token vs public, paired (the same server run, each round): median %.1f%% "
          "fewer req/s (rounds: %s)" % (100.0 * (1 - statistics.median(paired)),
                                       " ".join("%.1f" % (100.0 * (1 - r)) for r in paired)))
    print("\nmicrobenchmark: microseconds per verification (Verifier.verify)")
    for name, cache, us in microbench():
        print("  %-6s cache=%-5s %8.2f us" % (name, "on" if cache else "off", us))


if __name__ == "__main__":
    main()
