"""Options of kore-plugin-metrics (``korectl run --metrics-bind ...``)."""

from kore.config import Option

OWNER = "kore-plugin-metrics"


def options():
    def o(*a, **kw):
        kw.setdefault("owner", OWNER)
        return Option(*a, **kw)

    return [
        o("log_format", "choice", "text", "format of the error log on stdout or "
          "in logfile: text, or json (one JSON object per line, OpenTelemetry "
          "field names)", choices=("text", "json"), flags=("--log-format",)),
        o("metrics_bind", "str", "", "address of the master's Prometheus "
          "listener serving /metrics, e.g. 127.0.0.1:9100 ('' = off)",
          flags=("--metrics-bind",)),
        o("metrics_interval", "float", 1.0, "seconds between the snapshots a "
          "worker sends to the master (a scrape also asks for fresh ones)",
          minimum=0.05, flags=("--metrics-interval",)),
        o("health_path", "str", "/healthz", "liveness path answered by every "
          "worker ('' = none)", flags=("--health-path",)),
        o("ready_path", "str", "/readyz", "readiness path answered by every "
          "worker ('' = none)", flags=("--ready-path",)),
        o("health_bind", "str", "", "own listener for the health paths, e.g. "
          "127.0.0.1:9101 ('' = on the application's servers)",
          flags=("--health-bind",)),
        o("health_block_ms", "int", 1000, "/healthz answers 503 when the "
          "worker's event loop was blocked longer than this", minimum=10),
        o("health_log", "yesno", False, "log the health paths in the access log",
          flags=("--health-log",)),
        o("max_requests", "int", 0, "replace a worker gracefully after this "
          "many requests (0 = never)", minimum=0, flags=("--max-requests",)),
        o("max_requests_jitter", "int", 0, "add 0..N random requests to "
          "max_requests per worker (workers do not all restart at once)",
          minimum=0, flags=("--max-requests-jitter",)),
        o("status_path", "str", "/status", "path of the status page (HTML; JSON "
          "with ?format=json) on the --metrics-bind listener ('' = none)",
          flags=("--status-path",)),
        o("status_allow", "list", ["127.0.0.0/8", "::1"], "addresses and networks "
          "allowed to read the status page (others get 403)",
          flags=("--status-allow",)),
        o("max_worker_rss", "int", 0, "replace a worker gracefully when its "
          "resident memory exceeds this many MiB (0 = never)", minimum=0,
          flags=("--max-worker-rss",)),
    ]
