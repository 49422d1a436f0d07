"""The http plugin's configuration options (``kore.config.http_*``, ...)."""

from kore.config import Option

OWNER = "kore-plugin-http"


def _check_format(value):
    from .accessfmt import check_format
    return check_format(value)


def options():
    O = Option

    def o(*a, **kw):
        kw.setdefault("owner", OWNER)
        return O(*a, **kw)

    return [
        o("bind", "list", [], "address(es) to listen on, replacing the app's "
          "server addresses: HOST:PORT, [::1]:PORT, unix:/path", flags=("-b", "--bind")),
        o("http_access_log", "str", "", "access log file ('-' for stdout); "
          "domains may set their own with domain.accesslog",
          flags=("--access-log", "--access-logfile")),
        o("http_access_log_format", "str", "common", "access log format: "
          "'common' (common log format plus duration), 'json' (JSON lines, "
          "OpenTelemetry field names) or a gunicorn format string such as "
          "'%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s'",
          normalize=_check_format, flags=("--access-log-format",)),
        o("http_access_log_buffer", "int", 65536, "bytes of access-log lines a "
          "worker keeps before writing them (0: write every line at once)",
          minimum=0, flags=("--access-log-buffer",)),
        o("http_access_log_flush", "float", 1.0, "seconds after which buffered "
          "access-log lines are written at the latest", minimum=0.01,
          flags=("--access-log-flush",)),
        o("http_header_max", "int", 4096, "largest request head in bytes (431 above)",
          minimum=64),
        o("http_header_timeout", "int", 10, "seconds a client gets to send a "
          "request head (408 after)", minimum=1),
        o("http_body_max", "int", 1024000, "largest request body in bytes "
          "(413 above; 0 refuses bodies)", minimum=0),
        o("http_body_timeout", "int", 60, "seconds a client gets to send a "
          "request body (408 after)", minimum=1),
        o("http_keepalive_time", "int", 20, "seconds an idle keep-alive "
          "connection stays open", minimum=0),
        o("http_request_limit", "int", 1000, "requests a worker handles at "
          "once (503 above)", minimum=1),
        o("http_request_ms", "int", 10, "milliseconds a connection may run "
          "pipelined requests back to back before other connections get a turn",
          minimum=0),
        o("http_body_disk_offload", "int", 0, "bodies larger than this many "
          "bytes go to a file (req.body_path); 0 keeps them in memory", minimum=0),
        o("http_body_disk_path", "str", "tmp_files", "directory for offloaded bodies"),
        o("http_hsts_enable", "int", 31536000, "max-age of the "
          "Strict-Transport-Security header on TLS responses (0: none)", minimum=0),
        o("http_server_version", "str", "kore", "the Server header ('' for none)"),
        o("http_pretty_error", "yesno", False, "small HTML bodies on errors"),
        o("http_media_type", "list", [], "extra content types for filemaps, "
          "each 'type ext ext...', e.g. 'text/html html htm'; each assignment "
          "in the app adds one, as Kore", accumulate=True),
        o("http_forwarded_allow_ips", "list", ["127.0.0.1", "::1"], "peers "
          "trusted for X-Forwarded-For and the PROXY protocol ('*' for any)",
          flags=("--forwarded-allow-ips",)),
        o("http_proxy_protocol", "yesno", False, "expect a PROXY protocol "
          "(v1 or v2) header from trusted peers", flags=("--proxy-protocol",)),
        o("tls_version", "choice", "both", "TLS versions: both (1.2 and 1.3), "
          "1.2 or 1.3", choices=("both", "1.2", "1.3")),
        o("tls_cipher", "str", "", "OpenSSL cipher list for TLS 1.2 ('' for "
          "Python's default)"),
        o("tls_dhparam", "str", "", "DH parameters file (only read when it exists "
          "and a TLS server is configured)"),
        o("filemap_ext", "str", "", "extension tried when a filemap path does "
          "not exist (e.g. '.html')"),
        o("filemap_index", "str", "", "file served for a directory in a filemap "
          "(e.g. 'index.html')"),
    ]
