"""The ``redis`` backplane driver: Redis pub/sub, at most once.

Every worker publishes to one channel (``<backplane_prefix>:backplane``) and
subscribes to it.  What is published while a worker is disconnected is
lost, and counted (``status()["dropped"]``): frames it could not send, and
gaps in the sequence numbers of other workers once it receives again.
"""

import time

from .common import RedisDriver


class RedisBackplane(RedisDriver):
    name = "redis"
    keeps_offline = False

    def _write(self, batch):
        pipe = self.client.pipeline(transaction=False)
        key = self.key
        for data in batch:
            pipe.publish(key, data)
        pipe.execute()

    def _read(self):
        client = self._client()
        ps = client.pubsub(ignore_subscribe_messages=False)
        try:
            ps.subscribe(self.key)
            interval = self.interval
            seen = time.monotonic()
            pinged = False
            while self.running:
                msg = ps.get_message(timeout=interval)
                now = time.monotonic()
                if msg is None:
                    # health check: a PING must come back within an interval,
                    # else the connection is half-open (or the server hangs)
                    if pinged and now - seen > 2 * interval:
                        raise TimeoutError("no answer to PING in %.1f s" % (now - seen))
                    if now - seen >= interval and not pinged:
                        ps.ping()
                        pinged = True
                    continue
                seen = now
                pinged = False
                kind = msg["type"]
                if kind == "message":
                    self.dispatch(msg["data"])
                elif kind == "subscribe":
                    self._connected()
        finally:
            try:
                ps.close()
            except Exception:
                pass
            client.close()
