"""MasterCounts with a store shared by hosts (in-process): leases come from
the shared store; when it fails the host's own count takes over (fail open
to the per-host count), a timeout pauses the shared store for RETRY
seconds, and the warnings say when it went away and came back."""

import json

from kore import ipc
from kore.log import LOG
from kore_gateway.ratelimit import MasterCounts, MSG_TAKE


class Arbiter:
    num_workers = 1

    def __init__(self):
        self.sent = []

    def route(self, msg):
        self.sent.append(json.loads(msg.payload))


class Shared:
    def __init__(self):
        self.used = {}
        self.fail = None
        self.calls = 0

    def take(self, key, want, limit, window, index):
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        used = self.used.get((key, index), 0)
        granted = max(0, min(want, limit - used))
        self.used[(key, index)] = used + granted
        return granted, limit - used - granted


def ask(mc, arb, key="k", limit=10, index=1):
    payload = json.dumps({"id": 1, "key": key, "limit": limit, "window": 60,
                          "index": index}).encode()
    mc.take(arb, ipc.Message(MSG_TAKE, payload))
    return arb.sent[-1]


def test_shared_then_local_then_shared(monkeypatch):
    lines = []
    monkeypatch.setattr(LOG, "write", lambda level, text: lines.append(text))
    now = [100.0]
    shared = Shared()
    shared.used[("k", 1)] = 8               # another host took 8 of 10
    mc = MasterCounts(shared=shared, clock=lambda: now[0])
    arb = Arbiter()
    r = ask(mc, arb)
    assert (r["granted"], r["left"]) == (2, 0)
    # refused by the network: this host's own count, asked again next time
    shared.fail = ConnectionError("Error 111 connecting")
    r = ask(mc, arb, key="j")
    assert r["granted"] == 5 and shared.calls == 2
    assert any("cannot be reached (Error 111" in x for x in lines)
    ask(mc, arb, key="j")
    assert shared.calls == 3
    # a timeout: the shared store rests RETRY seconds
    shared.fail = TimeoutError("timed out")
    ask(mc, arb, key="i")
    calls = shared.calls
    ask(mc, arb, key="i")
    assert shared.calls == calls
    now[0] += MasterCounts.RETRY
    shared.fail = None
    r = ask(mc, arb, key="h")
    assert shared.calls == calls + 1 and r["granted"] == 5
    assert sum("answers again" in x for x in lines) == 1
    assert sum("cannot be reached" in x for x in lines) == 1
