"""Metrics, health, the status page, recycling and the access log.

    korectl run --workers 2 --metrics-bind 127.0.0.1:9100 \
        --max-requests 1000 --max-requests-jitter 50 --max-worker-rss 512 \
        --access-log - --access-log-format json examples/metrics/app.py

    curl http://127.0.0.1:8888/item/42
    curl http://127.0.0.1:9100/metrics      # totals of both workers
    curl http://127.0.0.1:9100/status       # status page (HTML; ?format=json)
    curl http://127.0.0.1:8888/healthz       # liveness
    curl http://127.0.0.1:8888/readyz        # readiness (503 while MAINTENANCE exists)

A gunicorn-style access log instead of JSON lines:

    --access-log-format '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)s'
"""

import os

import kore

PORT = os.environ.get("PORT", "8888")
MAINTENANCE = os.environ.get("MAINTENANCE_FILE", "maintenance")

kore.server("default", ip="127.0.0.1", port=PORT, tls=False)
kore.domain("*", attach="default")

# Skitai's names: replace a worker spinning its CPU (90 % for 3 samples of 20 s)
kore.set_worker_critical_point(cpu_percent=90.0, continuous=3, interval=20)
# keep static files out of the access log
kore.log_off("/static/", "*.css")


@kore.ready_check
def maintenance():
    """Take this server out of a load balancer by creating the file."""
    if os.path.exists(MAINTENANCE):
        return "in maintenance"
    return None


@kore.route("^/item/[0-9]+$", methods=["get"])
def item(req):
    req.response(200, b"item\n")


@kore.route("/static/site.css", methods=["get"])
def css(req):
    req.response(200, b"body{}\n")
