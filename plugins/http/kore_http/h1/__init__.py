"""HTTP/1.1 transport: the connection loop, framing, chunking, keep-alive."""
