"""The gateway's rate-limit count on Redis, shared by every host.

One key per (policy and subject, window): ``<prefix>:ratelimit:<key>:<index>``
holding the requests granted so far.  A lease is one Lua script, so two
hosts asking at once can never pass the limit together: it reads the count,
grants ``min(want, limit - used)``, adds it with ``INCRBY`` and sets
``PEXPIREAT`` to the window's end (plus a second, for clock skew), so old
windows clean themselves up.  The master calls it (``MasterCounts``) with
short timeouts: a Redis that does not answer makes the gateway count on its
own host (kore_gateway.ratelimit), never refuse.
"""

import redis

# KEYS[1] the count; ARGV: want, limit, expiry (ms since the epoch)
_TAKE = """
local used = tonumber(redis.call('get', KEYS[1]) or '0')
local left = tonumber(ARGV[2]) - used
local granted = math.min(tonumber(ARGV[1]), left)
if granted < 0 then granted = 0 end
if granted > 0 then
  redis.call('incrby', KEYS[1], granted)
  redis.call('pexpireat', KEYS[1], ARGV[3])
end
return {granted, left - granted}
"""

# KEYS[1] the count; ARGV: n (a worker's unused lease, given back)
_GIVE_BACK = """
local used = tonumber(redis.call('get', KEYS[1]) or '0')
local n = math.min(tonumber(ARGV[1]), used)
if n > 0 then redis.call('decrby', KEYS[1], n) end
return n
"""

TIMEOUT = 0.5       # seconds; the worker waits 2 s for its lease


class RedisCounterStore:
    """``kore_gateway.store.CounterStore`` on a Redis server."""

    def __init__(self, url, prefix, timeout=TIMEOUT):
        self.client = redis.Redis.from_url(url, socket_timeout=timeout,
                                           socket_connect_timeout=timeout)
        self.prefix = prefix + ":ratelimit:"
        self.script = self.client.register_script(_TAKE)
        self.give_back_script = self.client.register_script(_GIVE_BACK)

    def take(self, key, want, limit, window, index):
        expire = ((index + 1) * window + 1) * 1000
        granted, left = self.script(keys=["%s%s:%d" % (self.prefix, key, index)],
                                    args=[int(want), int(limit), int(expire)])
        return int(granted), max(0, int(left))

    def give_back(self, key, n, index):
        """A worker's unused lease back into the window's count (a key
        that expired, its window over, is left alone: GET gives 0)."""
        self.give_back_script(keys=["%s%s:%d" % (self.prefix, key, index)], args=[int(n)])

    def __repr__(self):
        return "<RedisCounterStore %s>" % self.prefix
