"""kore-plugin-http: Kore's HTTP server, routing and request API on gevent."""

__version__ = "0.1.0"
