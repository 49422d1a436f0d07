"""wrk -> proxy -> upstream: kore's proxy vs nginx proxy_pass (upstream
keepalive 64, HTTP/1.1) vs HAProxy, one proxy at a time, the same nginx
upstreams (a 13-byte body) for all; then a fail-over run per proxy (two
upstreams, one SIGKILLed half-way) counting non-2xx responses and errors.

    apt-get install -y nginx-light haproxy wrk
    .venv/bin/python bench/proxy/run.py --rounds 3 --duration 5

Prints req/s, p99 ms and proxy CPU seconds per 100k requests (medians of
the rounds), and the fail-over counts.  One worker / process / thread each.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import free_port, group_cpu, stop_group, wait_port  # noqa: E402

BIN = os.path.dirname(sys.executable)

UPSTREAM_CONF = """
worker_processes 1;
daemon off;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{ return 200 "Hello, World!"; }}
    }}
}}
"""

NGINX_PROXY_CONF = """
worker_processes 1;
daemon off;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream up {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""

HAPROXY_CONF = """
global
    maxconn 4000
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
    option forwardfor
    retries 3
    option redispatch
frontend f
    bind 127.0.0.1:{port}
    default_backend b
backend b
    balance roundrobin
    http-reuse always
{servers}
"""


def start(cmd, env=None, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=e, cwd=cwd, start_new_session=True)


def nginx(conf_text, tmp, name):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(conf_text.replace("{dir}", d))
    return start(["nginx", "-p", d, "-c", conf])


def upstream(tmp, name):
    port = free_port()
    p = nginx(UPSTREAM_CONF.format(dir="{dir}", port=port), tmp, name)
    assert wait_port(port), "upstream nginx did not start"
    return p, port


def proxy(kind, tmp, ups):
    port = free_port()
    if kind == "kore":
        p = start([os.path.join(BIN, "korectl"), "run", "--workers", "1", "--bind",
                   "127.0.0.1:%d" % port, os.path.join(HERE, "kore_proxy_app.py")],
                  env={"UPS": ",".join("127.0.0.1:%d" % u for u in ups)}, cwd=tmp)
    elif kind == "nginx":
        servers = "\n".join("        server 127.0.0.1:%d max_fails=1 fail_timeout=10s;" % u
                            for u in ups)
        p = nginx(NGINX_PROXY_CONF.format(dir="{dir}", port=port, servers=servers), tmp,
                  "proxy-nginx")
    else:
        servers = "\n".join("    server s%d 127.0.0.1:%d check inter 2000 rise 2 fall 3"
                            % (i, u) for i, u in enumerate(ups))
        conf = os.path.join(tmp, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY_CONF.format(port=port, servers=servers))
        p = start(["haproxy", "-db", "-f", conf])
    assert wait_port(port), "%s did not start" % kind
    return p, port


def parse_latency(text):
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def wrk(url, duration, conns):
    out = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % duration, "--latency", url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     out)
    return {"rps": float(m.group(1)) if m else 0.0, "n": int(n.group(1)) if n else 0,
            "p99": parse_latency(out), "non2xx": int(bad.group(1)) if bad else 0,
            "sockerr": sum(int(x) for x in sock.groups()) if sock else 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--only", default="kore,nginx,haproxy")
    ap.add_argument("--no-failover", action="store_true")
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "haproxy"):
        if shutil.which(tool) is None:
            sys.exit("%s is not installed (apt-get install -y nginx-light haproxy wrk)" % tool)
    kinds = args.only.split(",")
    tmp = tempfile.mkdtemp(prefix="kore-bench-proxy.")
    results = {k: [] for k in kinds}
    up, uport = upstream(tmp, "up1")
    try:
        for r in range(args.rounds):
            for kind in kinds:
                p, port = proxy(kind, tmp, [uport])
                try:
                    wrk("http://127.0.0.1:%d/" % port, 1, args.connections)   # warm-up
                    c0 = group_cpu(p.pid)
                    res = wrk("http://127.0.0.1:%d/" % port, args.duration, args.connections)
                    res["cpu"] = (group_cpu(p.pid) - c0) / max(res["n"], 1) * 100000
                    results[kind].append(res)
                finally:
                    stop_group(p)
    finally:
        stop_group(up)
    print("proxy     req/s     p99 ms  CPU s/100k  non-2xx+errors   (wrk -t1 -c%d -d%ds, "
          "medians of %d)" % (args.connections, args.duration, args.rounds))
    for kind in kinds:
        rs = results[kind]
        print("%-8s %8.0f %9.2f %10.2f %10d" % (
            kind, statistics.median(x["rps"] for x in rs),
            statistics.median(x["p99"] for x in rs),
            statistics.median(x["cpu"] for x in rs),
            sum(x["non2xx"] + x["sockerr"] for x in rs)))
    if args.no_failover:
        return
    dur = max(args.duration * 2, 10)
    print("\nfail-over: two upstreams, one SIGKILLed at t=%ds of %ds" % (dur // 2, dur))
    for kind in kinds:
        u1, p1 = upstream(tmp, "fo1-" + kind)
        u2, p2 = upstream(tmp, "fo2-" + kind)
        p, port = proxy(kind, tmp, [p1, p2])
        try:
            killer = threading.Timer(dur / 2, lambda: os.killpg(u2.pid, signal.SIGKILL))
            killer.start()
            res = wrk("http://127.0.0.1:%d/" % port, dur, args.connections)
            killer.join()
            print("%-8s %8d requests, %d non-2xx, %d socket errors" % (
                kind, res["n"], res["non2xx"], res["sockerr"]))
        finally:
            stop_group(p)
            stop_group(u1)
            stop_group(u2)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
