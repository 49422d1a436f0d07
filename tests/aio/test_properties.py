"""Property tests: gather order, queue FIFO, lock exclusion, split_command."""

import gevent
from hypothesis import given, settings, strategies as st

import kore
from kore.aio import drive, split_command

FAST = settings(max_examples=30, deadline=None)


@FAST
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), max_size=8),
       st.integers(0, 4))
def test_gather_argument_order_for_any_delays(children, concurrency):
    async def child(i, ms, fail):
        await kore.suspend(ms)
        if fail:
            raise ValueError(i)
        return i

    async def main():
        return await kore.gather(*[child(i, ms, f) for i, (ms, f) in enumerate(children)],
                                 concurrency=concurrency)
    res = drive(main())
    assert len(res) == len(children)
    for i, (r, (_, fail)) in enumerate(zip(res, children)):
        if fail:
            assert isinstance(r, ValueError) and r.args == (i,)
        else:
            assert r == i


@FAST
@given(st.lists(st.sampled_from(["push", "popnow", "waiter"]), max_size=25))
def test_queue_is_fifo_and_waiters_are_served_in_order(ops):
    q = kore.queue()
    got = []          # (who, value) in the order objects were obtained
    greenlets = []
    counter = [0]

    async def waiter(name):
        got.append((name, await q.pop()))

    for op in ops:
        if op == "push":
            q.push(counter[0])
            counter[0] += 1
        elif op == "popnow":
            v = q.popnow()
            if v is not None:
                got.append(("now", v))
        else:
            greenlets.append(gevent.spawn(drive, waiter("w%d" % len(greenlets))))
        gevent.sleep(0)
    gevent.sleep(0)
    for g in greenlets:
        g.kill()
    values = [v for _, v in got]
    # every object obtained at most once and in push order
    assert values == sorted(values) and len(set(values)) == len(values)
    # waiters got objects in the order they started waiting
    waiters = [int(w[1:]) for w, _ in got if w != "now"]
    assert waiters == sorted(waiters)


@FAST
@given(st.lists(st.integers(0, 3), min_size=1, max_size=8))
def test_lock_never_held_twice(delays):
    lk = kore.lock()
    inside = [0]
    worst = [0]

    async def user(ms):
        async with lk:
            inside[0] += 1
            worst[0] = max(worst[0], inside[0])
            await kore.suspend(ms)
            inside[0] -= 1
    gs = [gevent.spawn(drive, user(ms)) for ms in delays]
    gevent.joinall(gs, timeout=5)
    assert all(g.successful() for g in gs)
    assert worst[0] == 1 and not lk.locked


words = st.text(st.characters(blacklist_characters=' "\0', blacklist_categories=("Cs",)),
                min_size=1, max_size=8)


@FAST
@given(st.lists(st.one_of(words, words.map(lambda w: '"%s"' % w),
                          st.text(st.characters(blacklist_characters='"\0',
                                                blacklist_categories=("Cs",)),
                                  max_size=8).map(lambda w: '"%s"' % w)),
                min_size=1, max_size=6))
def test_split_command_roundtrip(parts):
    cmd = "  ".join(parts)
    assert split_command(cmd) == [p[1:-1] if p.startswith('"') else p for p in parts]
