"""The gateway benchmark's application: the same handler behind the gateway
(a valid HS256 token required) and without it.

BENCH_GATEWAY=0 runs it without the gateway plugin's functions (start it with
KORE_PLUGINS=http so the plugin is not even loaded); BENCH_TOKEN_CACHE sets
enable_gateway(token_cache=) (0: every request runs PyJWT's full decode).
"""

import os

import kore

SECRET = "bench-secret-bench-secret-bench-0001"


def hello(req):
    req.response(200, b"Hello, World!")


kore.route("/plain", methods=["get"])(hello)

if os.environ.get("BENCH_GATEWAY", "1") == "1":
    kore.enable_gateway(True, SECRET, realm="bench",
                        token_cache=int(os.environ.get("BENCH_TOKEN_CACHE", "4096")))

    def secure(req):
        req.response(200, b"Hello, World!")

    kore.route("/secure", methods=["get"])(secure)
    kore.gateway_policy("/plain", auth=False)
