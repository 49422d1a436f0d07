"""Hooks of kore-plugin-curl."""

from kore import hookimpl
from kore.config import Option

from . import client, hookspecs, multi
from .client import DEFAULT_RECV_MAX, DEFAULT_TIMEOUT, curl, httpclient
from .options import CONSTANTS

OWNER = "kore-plugin-curl"


@hookimpl
def kore_add_hookspecs(pm):
    pm.add_hookspecs(hookspecs)


@hookimpl
def kore_config_options(registry):
    registry.add(Option(
        "curl_timeout", "int", DEFAULT_TIMEOUT,
        "seconds a kore.httpclient / kore.curl transfer may take in total "
        "(0: no limit)", minimum=0, maximum=65535, owner=OWNER))
    registry.add(Option(
        "curl_recv_max", "int", DEFAULT_RECV_MAX,
        "largest response body (and header block) a transfer may receive, "
        "in bytes", minimum=0, owner=OWNER))


@hookimpl
def kore_namespace():
    names = {"httpclient": httpclient, "curl": curl,
             "pyhttpclient": httpclient, "pycurlhandle": curl}
    names.update(CONSTANTS)
    return names


@hookimpl
def kore_worker_init(worker):
    # libcurl state inherited from the master is never used in a worker;
    # each worker creates its own multi handle on first use.
    multi.reset_after_fork()
    client._frozen.clear()
    client._outgoing_hook[:] = []


@hookimpl
def kore_worker_shutdown(worker):
    multi.shutdown()


@hookimpl
def kore_metrics_collect(samples):
    # kore-plugin-metrics: this worker's outgoing transfers (kore.httpclient,
    # kore.curl): in flight (a gauge) and ended by outcome (counters)
    samples.family("kore_curl_requests_in_flight", "gauge",
                   "kore.httpclient / kore.curl transfers running")
    samples.set("kore_curl_requests_in_flight", (), multi.in_flight())
    samples.family("kore_curl_requests_total", "counter",
                   "kore.httpclient / kore.curl transfers ended, by outcome "
                   "(ok: libcurl finished, whatever the HTTP status; timeout: "
                   "curl_timeout or CURLOPT_TIMEOUT; error: anything else, "
                   "cancelled included)")
    for outcome, n in zip(multi.OUTCOMES, multi.finished):
        samples.set("kore_curl_requests_total", (("outcome", outcome),), n)
