"""kore-plugin-metrics: Prometheus metrics, health endpoints, worker recycling."""
