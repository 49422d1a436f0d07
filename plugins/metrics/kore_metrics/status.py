"""The status page (Skitai's ``was.status``), served by the master on the
``--metrics-bind`` listener at ``status_path`` (default ``/status``):

* ``/status``: an HTML page; ``/status?format=json`` (or an ``Accept:
  application/json`` request): the same numbers as JSON;
* totals in the manner of nginx's stub_status (active connections, accepted
  connections, requests, workers, respawns, the master's uptime) and one
  row per worker: id, pid, state, requests, open connections, resident
  memory, CPU percent;
* only peers in ``status_allow`` (default loopback) get it, others a 403;
  no environment, configuration or command line is shown.

The numbers are as fresh as a scrape's: the workers are asked for their
snapshots first.  CPU percent is over the time since the previous status
request (the first request samples twice, 0.2 s apart).
"""

import html
import ipaddress
import json
import os
import time

import gevent
from kore import runtime

from . import procstat
from .worker import ACTIVE, CONNS, REQUESTS

STARTED = time.time()
_SAMPLER = procstat.Sampler()


def allowed(addr, nets):
    """True when ``addr`` (a str) is in one of ``nets`` (ip_network)."""
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in nets)


def networks(values):
    """``status_allow`` as ip_network objects; ConfigError naming the option."""
    from kore.config import ConfigError
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError:
            raise ConfigError("status_allow: %r is not an IP address or network "
                              "(e.g. 127.0.0.0/8, ::1, 10.0.0.0/8)" % v) from None
    return out


def _sum(values, name):
    return sum(v for (n, _), v in values.items() if n == name and not isinstance(v, list))


def collect(master):
    """The status document (a dict), after fresh snapshots."""
    master.refresh()
    arb = master.arbiter
    procs = sorted(arb.procs.items(), key=lambda kv: (kv[1].id, kv[0]))
    samples = {pid: _SAMPLER.sample(pid) for pid, _ in procs}
    if any(cpu is None for cpu, _ in samples.values()):
        gevent.sleep(0.2)
        samples = {pid: _SAMPLER.sample(pid) for pid, _ in procs}
    workers = []
    for pid, wp in procs:
        values = master.agg.live.get(pid, {})
        cpu, rss = samples[pid]
        workers.append({
            "id": wp.id, "pid": pid,
            "state": "retiring" if wp.retiring else "ready" if wp.ready else "starting",
            "requests": _sum(values, REQUESTS),
            "connections": values.get((ACTIVE, ()), 0),
            "rss_bytes": rss,
            "cpu_percent": None if cpu is None else round(cpu, 1),
        })
    total = master.agg.total(master.own)
    respawns = {}
    for (n, labels), v in total.items():
        if n == "kore_worker_respawns_total":
            respawns[dict(labels).get("reason", "")] = v
    return {
        "server": "kore",
        "master_pid": os.getpid(),
        "uptime_seconds": round(time.time() - STARTED, 1),
        "active_connections": sum(w["connections"] for w in workers),
        "accepts": _sum(total, CONNS),
        "requests": _sum(total, REQUESTS),
        "workers": len(workers),
        "workers_ready": sum(1 for w in workers if w["state"] == "ready"),
        "respawns": respawns,
        "worker": workers,
    }


def _mib(n):
    return "%.1f MiB" % (n / 1048576.0)


def render_html(doc):
    e = html.escape
    rows = "".join(
        "<tr><td>%d</td><td>%d</td><td>%s</td><td class=n>%d</td><td class=n>%d</td>"
        "<td class=n>%s</td><td class=n>%s</td></tr>"
        % (w["id"], w["pid"], e(w["state"]), w["requests"], w["connections"],
           _mib(w["rss_bytes"]), "-" if w["cpu_percent"] is None else "%.1f %%" % w["cpu_percent"])
        for w in doc["worker"])
    respawns = ", ".join("%s %d" % (e(k), v) for k, v in sorted(doc["respawns"].items())) or "none"
    return """<!doctype html>
<html><head><meta charset="utf-8"><title>kore status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-top:1em}
td,th{border:1px solid #ccc;padding:.3em .8em;text-align:left}
th{background:#f3f3f3}.n{text-align:right}
</style></head><body>
<h1>kore status</h1>
<pre id="totals">Active connections: %d
accepts %d requests %d
workers %d (ready %d), respawns: %s
master pid %d, up %.0f s</pre>
<table id="workers"><thead><tr><th>worker</th><th>pid</th><th>state</th><th>requests</th>
<th>connections</th><th>RSS</th><th>CPU</th></tr></thead>
<tbody>%s</tbody></table>
</body></html>
""" % (doc["active_connections"], doc["accepts"], doc["requests"], doc["workers"],
       doc["workers_ready"], respawns, doc["master_pid"], doc["uptime_seconds"], rows)


def answer(master, environ, start_response, nets):
    """The WSGI answer for ``status_path``."""
    peer = environ.get("REMOTE_ADDR", "")
    if not allowed(peer, nets):
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"forbidden: the status page is for the addresses in status_allow\n"]
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
        return [b""]
    doc = collect(master)
    want_json = ("format=json" in environ.get("QUERY_STRING", "")
                 or "application/json" in environ.get("HTTP_ACCEPT", ""))
    if want_json:
        body = json.dumps(doc, separators=(",", ":")).encode()
        ctype = "application/json"
    else:
        body = render_html(doc).encode("utf-8")
        ctype = "text/html; charset=utf-8"
    start_response("200 OK", [("Content-Type", ctype), ("Cache-Control", "no-store"),
                              ("Content-Length", str(len(body)))])
    return [body]


def options_nets():
    return networks(runtime.option("status_allow"))
