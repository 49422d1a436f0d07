"""kore-plugin-http2: HTTP/2 for every kore app, on the h2 library."""
