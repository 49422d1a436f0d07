"""HTTP/1.1 message pieces without I/O: decoders fed with bytes by the
connection loop (RFC 9112)."""
