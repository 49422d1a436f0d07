"""suspend, gather, timer, queue and lock."""

import time

import gevent
import pytest

import kore
from kore import _state
from kore.aio import TaskKilled, drive, start_deferred
from kore_testing import gevent_wait_for


# -- suspend -------------------------------------------------------------------

def test_suspend_waits_and_returns_none(run):
    async def coro():
        t0 = time.monotonic()
        r = await kore.suspend(50)
        return r, time.monotonic() - t0
    r, dt = run(coro())
    # waited its 50 ms; the upper bound only catches a unit mistake (50 s)
    assert r is None and 0.045 <= dt < 5.0


def test_suspend_zero_lets_others_run(run):
    order = []

    async def a():
        order.append("a1")
        await kore.suspend(0)
        order.append("a2")

    async def b():
        order.append("b")
    gevent.joinall([gevent.spawn(drive, a()), gevent.spawn(drive, b())], timeout=5)
    assert order == ["a1", "b", "a2"]


@pytest.mark.parametrize("bad,exc", [(-1, ValueError), (1.5, TypeError), ("1", TypeError)])
def test_suspend_bad_argument(bad, exc):
    with pytest.raises(exc):
        kore.suspend(bad)


# -- gather --------------------------------------------------------------------

async def _delayed(ms, value, fail=False):
    await kore.suspend(ms)
    if fail:
        raise ValueError(value)
    return value


def test_gather_results_in_argument_order(run):
    async def coro():
        return await kore.gather(_delayed(30, "a"), _delayed(10, "b"), _delayed(20, "c"))
    assert run(coro()) == ["a", "b", "c"]


def test_gather_exceptions_are_values(run):
    async def coro():
        return await kore.gather(_delayed(5, "ok"), _delayed(1, "bad", fail=True))
    res = run(coro())
    assert res[0] == "ok"
    assert isinstance(res[1], ValueError) and str(res[1]) == "bad"


def test_gather_runs_concurrently(run):
    active = [0, 0]

    async def child(i):
        active[0] += 1
        active[1] = max(active[1], active[0])
        await kore.suspend(200)
        active[0] -= 1
        return i

    async def coro():
        t0 = time.monotonic()
        res = await kore.gather(*[child(i) for i in range(10)])
        return res, time.monotonic() - t0
    res, dt = run(coro())
    assert res == list(range(10))
    assert active[1] == 10          # all ten were suspended at once
    assert dt < 1.0                 # one after another takes 2 s


@pytest.mark.parametrize("limit,expected", [(1, 1), (3, 3), (0, 8)])
def test_gather_concurrency_limit(run, limit, expected):
    active = [0, 0]

    async def child(i):
        active[0] += 1
        active[1] = max(active[1], active[0])
        await kore.suspend(5)
        active[0] -= 1
        return i

    async def coro():
        return await kore.gather(*[child(i) for i in range(8)], concurrency=limit)
    assert run(coro()) == list(range(8))
    assert active[1] == expected


def test_gather_children_have_their_own_task_ids(run):
    async def child():
        await kore.suspend(1)
        return kore.task_id()

    async def coro():
        ids = await kore.gather(child(), child())
        return kore.task_id(), ids
    me, ids = run(coro())
    assert len(set(ids + [me])) == 3


def test_gather_empty(run):
    async def coro():
        return await kore.gather()
    assert run(coro()) == []


def test_gather_outside_coroutine():
    c = _delayed(1, 1)
    with pytest.raises(RuntimeError, match="only available in coroutines"):
        kore.gather(c)


def test_gather_rejects_non_coroutines(run):
    async def coro():
        with pytest.raises(TypeError, match="not a coroutine"):
            kore.gather(_delayed(1, 1), 5)
        with pytest.raises(TypeError, match="concurrency"):
            kore.gather(_delayed(1, 1), concurrency="2")
        with pytest.raises(ValueError):
            kore.gather(_delayed(1, 1), concurrency=-1)
        return True
    assert run(coro())


def test_gather_cancelled_kills_children(run):
    started, state = [], []

    async def child(i):
        started.append(i)
        try:
            await kore.suspend(5000)
        finally:
            state.append(i)

    async def parent():
        await kore.gather(child(1), child(2), child(3), concurrency=2)
    g = gevent.spawn(drive, parent())
    assert gevent_wait_for(lambda: len(started) == 2)
    g.kill(block=True, timeout=2)
    assert g.dead and sorted(state) == [1, 2]


def test_gather_child_killed_gives_taskkilled(run):
    ids = []

    async def victim():
        ids.append(kore.task_id())
        await kore.suspend(5000)

    async def killer():
        while not ids:              # the victim is suspended in its own task
            await kore.suspend(1)
        kore.task_kill(ids[0])
        return "killer"

    async def coro():
        return await kore.gather(victim(), killer())
    res = run(coro())
    assert isinstance(res[0], TaskKilled) and res[1] == "killer"


# -- timer ---------------------------------------------------------------------

def test_timer_oneshot_with_data():
    seen = []
    t = kore.timer(seen.append, 10, kore.TIMER_ONESHOT, data="payload")
    assert gevent_wait_for(lambda: seen)
    gevent.sleep(0.05)              # a oneshot does not fire again
    assert seen == ["payload"]
    assert t.close() is True


def test_timer_repeats_until_closed():
    seen = []
    t0 = time.monotonic()
    t = kore.timer(lambda: seen.append(1), 10, 0)
    assert gevent_wait_for(lambda: len(seen) >= 4)
    t.close()
    elapsed = time.monotonic() - t0
    n = len(seen)
    # never faster than its 10 ms interval
    assert elapsed >= 0.035 and n <= elapsed / 0.01 + 1
    gevent.sleep(0.05)              # closed: no more calls
    assert len(seen) == n


def test_timer_close_before_firing():
    seen = []
    t = kore.timer(lambda: seen.append(1), 20, kore.TIMER_ONESHOT)
    t.close()
    gevent.sleep(0.05)
    assert seen == []


def test_timer_close_from_its_callback():
    seen = []

    def cb(t_holder):
        seen.append(1)
        t_holder[0].close()
    holder = []
    holder.append(kore.timer(cb, 5, 0, data=holder))
    assert gevent_wait_for(lambda: seen)
    gevent.sleep(0.03)              # closed by its first call: no second one
    assert seen == [1]


def test_timer_exception_reported_and_keeps_running(reports):
    calls = []

    def cb():
        calls.append(1)
        raise ValueError("tick")
    t = kore.timer(cb, 10, 0)
    assert gevent_wait_for(lambda: len(calls) >= 3)
    t.close()
    assert len(calls) >= 3
    assert len(reports) == len(calls) and all(isinstance(e, ValueError) for e in reports)


def test_timer_coroutine_callback_runs_as_task():
    seen = []

    async def cb():
        await kore.suspend(1)
        seen.append(kore.task_id())
    kore.timer(cb, 5, kore.TIMER_ONESHOT)
    assert gevent_wait_for(lambda: seen)
    gevent.sleep(0.03)
    assert len(seen) == 1


def test_timer_bad_arguments():
    with pytest.raises(TypeError):
        kore.timer("nope", 10, 0)
    with pytest.raises(RuntimeError, match="invalid flags"):
        kore.timer(print, 10, 4)
    with pytest.raises(ValueError):
        kore.timer(print, -5, 0)


def test_timer_in_master_is_deferred(master_role):
    seen = []
    t = kore.timer(lambda: seen.append(1), 5, kore.TIMER_ONESHOT)
    gevent.sleep(0.03)
    assert seen == [] and len(master_role) == 1
    _state.role = "worker"
    start_deferred()
    assert gevent_wait_for(lambda: seen)
    assert seen == [1]
    t.close()


def test_timer_closed_in_master_never_starts(master_role):
    seen = []
    t = kore.timer(lambda: seen.append(1), 5, 0)
    t.close()
    _state.role = "worker"
    start_deferred()
    gevent.sleep(0.03)
    assert seen == []


# -- queue ---------------------------------------------------------------------

def test_queue_fifo_and_popnow():
    q = kore.queue()
    assert q.popnow() is None
    assert q.push(1) is True
    q.push(2)
    q.push(None)
    assert q.popnow() == 1
    assert drive(_pop(q)) == 2
    assert q.popnow() is None


async def _pop(q):
    return await q.pop()


def test_queue_first_waiter_woken_first(run):
    q = kore.queue()
    got = []

    async def waiter(name):
        got.append((name, await q.pop()))
    gs = [gevent.spawn(drive, waiter(n)) for n in ("w1", "w2", "w3")]
    assert gevent_wait_for(lambda: len(q._waiters) == 3)
    for i in range(3):
        q.push(i)
    gevent.joinall(gs, timeout=2)
    assert got == [("w1", 0), ("w2", 1), ("w3", 2)]


def test_queue_popnow_does_not_steal_from_waiter():
    q = kore.queue()
    got = []

    async def waiter():
        got.append(await q.pop())
    g = gevent.spawn(drive, waiter())
    assert gevent_wait_for(lambda: len(q._waiters) == 1)
    q.push("x")
    assert q.popnow() is None
    g.join(2)
    assert got == ["x"]


def test_queue_cancelled_waiter_leaves_line():
    q = kore.queue()
    got = []

    async def waiter(name):
        got.append((name, await q.pop()))
    g1 = gevent.spawn(drive, waiter("w1"))
    g2 = gevent.spawn(drive, waiter("w2"))
    assert gevent_wait_for(lambda: len(q._waiters) == 2)
    g1.kill(block=True)
    q.push("only")
    g2.join(2)
    assert got == [("w2", "only")]


def test_queue_cancelled_after_handoff_passes_object_on():
    q = kore.queue()
    got = []

    async def waiter(name):
        got.append((name, await q.pop()))
    g1 = gevent.spawn(drive, waiter("w1"))
    g2 = gevent.spawn(drive, waiter("w2"))
    assert gevent_wait_for(lambda: len(q._waiters) == 2)
    g1.kill(block=False)   # the kill is scheduled first ...
    q.push("obj")          # ... so w1 is handed the object and cancelled
    g2.join(2)
    assert got == [("w2", "obj")]


# -- lock ----------------------------------------------------------------------

def test_lock_serialises_async_with(run):
    lk = kore.lock()
    trace = []

    async def worker(name):
        async with lk:
            trace.append(name + "+")
            await kore.suspend(10)
            trace.append(name + "-")
    gs = [gevent.spawn(drive, worker(n)) for n in "abc"]
    gevent.joinall(gs, timeout=5)
    assert trace == ["a+", "a-", "b+", "b-", "c+", "c-"]
    assert not lk.locked


def test_lock_acquire_release_trylock(run):
    lk = kore.lock()

    async def coro():
        assert await lk.acquire() is True
        assert lk.trylock() is False
        lk.release()
        assert lk.trylock() is True
        lk.release()
        return True
    assert run(coro())


def test_lock_recursive_detected(run):
    lk = kore.lock()

    async def coro():
        async with lk:
            with pytest.raises(RuntimeError, match="recursive lock detected"):
                await lk.acquire()
        return True
    assert run(coro())


def test_lock_release_errors(run):
    lk = kore.lock()
    with pytest.raises(RuntimeError, match="no lock owner set"):
        lk.release()

    async def owner():
        await lk.acquire()
        await kore.suspend(5000)    # killed at the end

    async def thief():
        while not lk.locked:        # the owner holds it
            await kore.suspend(1)
        with pytest.raises(RuntimeError, match="lock not owned by caller"):
            lk.release()
        return True
    g = gevent.spawn(drive, owner())
    assert run(thief())
    g.kill()


def test_lock_released_when_holder_cancelled(run):
    lk = kore.lock()

    async def holder():
        async with lk:
            await kore.suspend(5000)

    async def next_in_line():
        async with lk:
            return "got it"
    g = gevent.spawn(drive, holder())
    assert gevent_wait_for(lambda: lk.locked)
    g2 = gevent.spawn(drive, next_in_line())
    assert gevent_wait_for(lambda: len(lk._waiters) == 1)
    g.kill(block=True)
    g2.join(2)
    assert g2.value == "got it" and not lk.locked


def test_lock_cancelled_waiter_leaves_line():
    lk = kore.lock()
    order = []

    hold = [True]

    async def user(name):
        async with lk:
            order.append(name)
            while hold[0] and name == "a":
                await kore.suspend(1)

    g1 = gevent.spawn(drive, user("a"))
    assert gevent_wait_for(lambda: order == ["a"])
    g2 = gevent.spawn(drive, user("b"))
    assert gevent_wait_for(lambda: len(lk._waiters) == 1)
    g3 = gevent.spawn(drive, user("c"))
    assert gevent_wait_for(lambda: len(lk._waiters) == 2)
    g2.kill(block=True)          # b leaves the line while a holds the lock
    hold[0] = False
    gevent.joinall([g1, g3], timeout=5)
    assert order == ["a", "c"] and not lk.locked


def test_lock_owned_per_coroutine_not_per_greenlet(run):
    lk = kore.lock()

    async def inner():
        # another coroutine, same greenlet: not the owner
        with pytest.raises(RuntimeError, match="not owned"):
            lk.release()
        return True

    async def outer():
        await lk.acquire()
        ok = drive(inner())
        lk.release()
        return ok
    assert run(outer())
