"""kore-plugin-redis's kore plugin: the cron plugin's cross-host lock and
the gateway's cross-host rate-limit count.

With a Redis backplane (``backplane = redis://...``), every host's cron
scheduler asks ``kore_cron_claim`` before a tick and only the host whose
``SET <prefix>:lock:cron:<job>:<epoch> <host> NX EX <ttl>`` succeeds runs it.
The key is the job and its *scheduled* time, so clock skew between hosts
cannot double a run.  Redis unreachable: the tick is skipped (logged by the
scheduler), never run twice.  The scheduler runs in the master, which holds
no backplane driver: the lock has its own short-lived Redis client there.

``kore_gateway_counter_store`` (declared by kore-plugin-gateway, asked by
the master once): with a Redis backplane, rate-limit counts live on Redis
(``counters.RedisCounterStore``), so a limit of N per window holds for all
hosts together.
"""

import os
import socket

from kore import hookimpl, runtime
from kore.log import LOG, LOG_WARNING

LOCK_TTL = 3600          # seconds a tick's key lives (it only has to outlive the tick)
_client = []


def _redis():
    """(client, key prefix) for the backplane's Redis, or None (local)."""
    if _client:
        return _client[0]
    from kore_websocket.spec import parse
    try:
        name, url = parse(runtime.option("backplane"))
    except Exception:
        name, url = "local", None
    if name not in ("redis", "redis-streams") or not url:
        _client.append(None)
        return None
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    # One retry, at once: enough for a pooled connection Redis dropped (a
    # restart); redis-py's default (10 retries with backoff) would hold the
    # master's cron scheduler for seconds on every tick while Redis is down.
    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0,
                                  retry=Retry(NoBackoff(), 1))
    _client.append((client, runtime.option("backplane_prefix") + ":lock:"))
    return _client[0]


def _redis_url():
    from kore_websocket.spec import parse
    try:
        name, url = parse(runtime.option("backplane"))
    except Exception:
        return None
    return url if name in ("redis", "redis-streams") and url else None


@hookimpl
def kore_app_reset():
    del _client[:]


@hookimpl
def kore_cron_claim(job, scheduled):
    found = _redis()
    if found is None:
        return None                      # no shared store: run here
    client, prefix = found
    key = "%scron:%s:%d" % (prefix, job.name, int(scheduled.timestamp()))
    holder = "%s:%d" % (socket.gethostname(), os.getpid())
    import redis
    try:
        return bool(client.set(key, holder, nx=True, ex=LOCK_TTL))
    except redis.RedisError as exc:
        LOG.write(LOG_WARNING, "cron job '%s': the Redis lock for %s cannot be taken "
                  "(%s): not running it here" % (job.name, scheduled.isoformat(), exc))
        return False


@hookimpl
def kore_gateway_counter_store():
    url = _redis_url()
    if url is None:
        return None                      # the master counts for this host
    from .counters import RedisCounterStore
    return RedisCounterStore(url, runtime.option("backplane_prefix"))
