"""``kore.enable_cachefs(memmax, diskmax, path)``: a response cache for
proxied GETs, memory and disk tiers with LRU limits (sizes in bytes).

Keys are scheme + host + request target; each key holds the variants its
``Vary`` header asks for.  An entry evicted from memory moves to disk (when
``diskmax`` > 0) and a disk hit moves back to memory.  Each worker has its
own cache (its disk files under ``path/w<pid>``, removed when it stops).
The answer carries Skitai's ``X-Cache-Lookup`` (``PASSED``: the request
bypasses the cache, ``MISS``, ``MEM_HIT``, ``HIT``: from disk) and ``Age``.
"""

import hashlib
import json
import os
import shutil
import time
from collections import OrderedDict

from kore.config import ConfigError

from . import cachepolicy as P


class Entry:
    __slots__ = ("status", "headers", "body", "stored", "age0", "lifetime", "names",
                 "values", "size")

    def current_age(self, now):
        return self.age0 + max(0.0, now - self.stored)

    def fresh(self, now):
        return self.current_age(now) < self.lifetime


class Cache:
    def __init__(self, memmax, diskmax=0, path=None, max_object=None):
        self.memmax = memmax
        self.diskmax = diskmax
        self.root = path
        self.path = None
        self.max_object = max_object if max_object is not None else \
            max(memmax, diskmax) // 8 or 1
        self.mem = OrderedDict()      # (key, values) -> Entry
        self.mem_size = 0
        self.disk = OrderedDict()     # (key, values) -> (file, size, meta)
        self.disk_size = 0
        self.varies = {}              # key -> vary names of its last response

    # -- keys -------------------------------------------------------------

    @staticmethod
    def key(scheme, host, target):
        return "%s://%s%s" % (scheme, host.lower(), target)

    def _slot(self, key, req_headers):
        names = self.varies.get(key)
        if names is None:
            return None
        return (key, P.vary_values(names, req_headers))

    # -- lookup --------------------------------------------------------------

    def lookup(self, key, req_headers, now=None):
        """(Entry, "MEM_HIT"/"HIT") of a fresh stored answer, or (None, None)."""
        now = time.time() if now is None else now
        slot = self._slot(key, req_headers)
        if slot is None:
            return None, None
        e = self.mem.get(slot)
        if e is not None:
            if not e.fresh(now):
                self._drop_mem(slot)
                return None, None
            self.mem.move_to_end(slot)
            return e, "MEM_HIT"
        d = self.disk.get(slot)
        if d is None:
            return None, None
        e = self._read_disk(slot, d)
        if e is None or not e.fresh(now):
            self._drop_disk(slot)
            return None, None
        self._drop_disk(slot)
        self._put_mem(slot, e)
        return e, "HIT"

    # -- storing -------------------------------------------------------------

    def store(self, key, req_headers, status, headers, body, now=None):
        """Store a response if the rules allow it; True when stored."""
        now = time.time() if now is None else now
        life = P.lifetime(status, headers, now)
        if life is None or life <= 0 or len(body) > self.max_object:
            return False
        names = P.vary_names(headers)
        self.varies[key] = names
        e = Entry()
        e.status = status
        e.headers = [(n, v) for n, v in headers if n.lower() != "age"]
        e.body = body
        e.stored = now
        try:
            e.age0 = max(0, int(P.header(headers, "age") or 0))
        except ValueError:
            e.age0 = 0
        e.lifetime = life
        e.names = names
        e.values = P.vary_values(names, req_headers)
        e.size = len(body) + sum(len(n) + len(v) for n, v in headers) + 64
        slot = (key, e.values)
        self._drop_mem(slot)
        self._drop_disk(slot)
        if e.size > max(self.memmax, self.diskmax):
            return False
        if e.size <= self.memmax:
            self._put_mem(slot, e)
        else:
            self._put_disk(slot, e)
        return True

    def _put_mem(self, slot, e):
        self.mem[slot] = e
        self.mem_size += e.size
        while self.mem_size > self.memmax and self.mem:
            old, oe = self.mem.popitem(last=False)
            self.mem_size -= oe.size
            if self.diskmax > 0:
                self._put_disk(old, oe)

    def _drop_mem(self, slot):
        e = self.mem.pop(slot, None)
        if e is not None:
            self.mem_size -= e.size

    # -- disk ----------------------------------------------------------------

    def _dir(self):
        if self.path is None:
            if not self.root:
                return None
            self.path = os.path.join(self.root, "w%d" % os.getpid())
            os.makedirs(self.path, exist_ok=True)
        return self.path

    def _put_disk(self, slot, e):
        d = self._dir()
        if d is None or e.size > self.diskmax:
            return
        name = hashlib.sha256(repr(slot).encode("utf-8")).hexdigest()
        sub = os.path.join(d, name[:2])
        os.makedirs(sub, exist_ok=True)
        fn = os.path.join(sub, name)
        meta = json.dumps({"status": e.status, "headers": e.headers, "stored": e.stored,
                           "age0": e.age0, "lifetime": e.lifetime,
                           "names": list(e.names), "values": list(e.values)})
        tmp = fn + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(meta.encode("utf-8") + b"\n")
                f.write(e.body)
            os.replace(tmp, fn)
        except OSError:
            return
        self.disk[slot] = (fn, e.size)
        self.disk_size += e.size
        while self.disk_size > self.diskmax and self.disk:
            old = next(iter(self.disk))
            self._drop_disk(old)

    def _read_disk(self, slot, d):
        try:
            with open(d[0], "rb") as f:
                meta = json.loads(f.readline())
                body = f.read()
        except (OSError, ValueError):
            return None
        e = Entry()
        e.status = meta["status"]
        e.headers = [tuple(h) for h in meta["headers"]]
        e.body = body
        e.stored = meta["stored"]
        e.age0 = meta["age0"]
        e.lifetime = meta["lifetime"]
        e.names = tuple(meta["names"])
        e.values = tuple(meta["values"])
        e.size = d[1]
        return e

    def _drop_disk(self, slot):
        d = self.disk.pop(slot, None)
        if d is not None:
            self.disk_size -= d[1]
            try:
                os.unlink(d[0])
            except OSError:
                pass

    def close(self):
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None


class _Settings:
    cache = None


SETTINGS = _Settings()


def enable_cachefs(memmax=0, diskmax=0, path=None):
    """kore.enable_cachefs(memmax, diskmax, path): sizes in bytes."""
    for name, v in (("memmax", memmax), ("diskmax", diskmax)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError("kore.enable_cachefs: %s must be a size in bytes (int >= 0), "
                              "got %r" % (name, v))
    if diskmax and not path:
        raise ConfigError("kore.enable_cachefs: diskmax=%d needs path= (a directory)"
                          % diskmax)
    if not memmax and not diskmax:
        raise ConfigError("kore.enable_cachefs: give memmax and/or diskmax (bytes)")
    SETTINGS.cache = Cache(memmax, diskmax, str(path) if path else None)
    return None


def reset():
    SETTINGS.cache = None
