"""kore-plugin-proxy: reverse proxy, load balancing, fail-over."""
