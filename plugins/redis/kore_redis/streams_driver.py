"""The ``redis-streams`` backplane driver: a Redis Stream, resumable.

Every worker appends to one stream (``XADD <backplane_prefix>:backplane
MAXLEN ~ backplane_buffer``) and reads it from the last id it saw (``XREAD
BLOCK``).  While Redis is unreachable a worker keeps what it publishes (up to
``backplane_buffer`` frames) and sends it on reconnect; a reader resumes
after its last id; the sequence numbers in the envelopes skip what a
retried XADD wrote twice.  So everything published during an outage is
delivered once after it.
"""

import redis

from .common import RedisDriver


class RedisStreamsBackplane(RedisDriver):
    name = "redis-streams"
    keeps_offline = True

    def __init__(self, sink, settings, url):
        RedisDriver.__init__(self, sink, settings, url)
        self.last_id = None

    def _write(self, batch):
        pipe = self.client.pipeline(transaction=False)
        key = self.key
        maxlen = max(self.buffer, 1000)
        for data in batch:
            pipe.xadd(key, {b"d": data}, maxlen=maxlen, approximate=True)
        pipe.execute()

    def _read(self):
        block = max(1, int(self.interval * 1000))
        client = self._client(timeout=self.interval * 2 + 1.0)
        try:
            key = self.key
            if self.last_id is None:
                newest = client.xrevrange(key, count=1)
                self.last_id = newest[0][0] if newest else b"0-0"
            else:
                client.ping()
            self._connected()
            while self.running:
                got = client.xread({key: self.last_id}, count=100, block=block)
                for _stream, entries in got or ():
                    for eid, fields in entries:
                        self.last_id = eid
                        data = fields.get(b"d")
                        if data is not None:
                            self.dispatch(data)
        except redis.ResponseError:
            raise
        finally:
            client.close()
