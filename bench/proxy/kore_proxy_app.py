"""The kore proxy of bench/proxy/run.py: every path to the alias @up."""

import os

import kore

kore.alias("@up", kore.PROTO_HTTP, os.environ["UPS"].split(","), keepalive=64,
           fail_timeout=10)
kore.mount("/", "@up")
