"""Hook specifications the gateway plugin adds (``kore_add_hookspecs``)."""

import pluggy

hookspec = pluggy.HookspecMarker("kore")


@hookspec(firstresult=True)
def kore_gateway_counter_store():
    """A rate-limit count shared with other hosts, or None.

    Runs in the master, once, when the first worker asks for a rate-limit
    lease (``gateway.take``).  Return an object with the method of
    ``kore_gateway.store.CounterStore``: ``take(key, want, limit, window,
    index) -> (granted, left)``, granting up to ``want`` requests of fixed
    window ``index`` (of ``window`` seconds) of ``key`` without the count of
    all hosts passing ``limit``.  ``take`` runs in the master's greenlet
    that reads the asking worker's channel and may block cooperatively
    (one round trip); it raises an exception (any) when the shared store
    cannot be reached: the master then counts on this host only until the
    store answers again (see docs/gateway.md, *Across hosts*).  Return None
    (or implement nothing) and the count is the master's, for this host.
    kore-plugin-redis answers with a Redis count when ``backplane`` is a
    Redis URL.

    :returns: a counter store or None.
    """
