"""drive_void(): drive() for a request handler's coroutine, whose value
nobody wants.  The same outcome as drive() in every case but the value."""

import asyncio

import gevent
import pytest

import kore
from kore.aio import _task, drive, drive_void


def _run_void(coro, timeout=10):
    g = gevent.spawn(drive_void, coro)
    g.join(timeout)
    assert g.ready(), "coroutine did not finish within %ss" % timeout
    return g.get()


def test_runs_to_the_end_through_kore_awaitables_and_returns_none():
    seen = []

    async def handler():
        await kore.suspend(1)
        seen.append("after")
        return 42                      # a value nobody wants
    assert _run_void(handler()) is None
    assert seen == ["after"]


def test_exception_propagates():
    async def handler():
        await kore.suspend(0)
        raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        _run_void(handler())


def test_foreign_awaits_are_the_same_type_errors_as_drive():
    loop = asyncio.new_event_loop()
    try:
        fut = loop.create_future()

        async def on_future():
            await fut
        with pytest.raises(TypeError, match=r"Future.*not a kore awaitable"):
            _run_void(on_future())
    finally:
        loop.close()

    async def on_sleep():
        await asyncio.sleep(0.01)
    with pytest.raises(TypeError, match=r"awaited asyncio\.tasks\.sleep\(\), which is "
                                        r"not a kore awaitable"):
        _run_void(on_sleep())

    async def caught():
        try:
            await asyncio.sleep(0)
        except TypeError:
            pass
        await kore.suspend(1)
    assert _run_void(caught()) is None


def test_task_ids_inside_and_nothing_left_behind():
    ids = []

    async def inner():
        ids.append(kore.task_id())

    async def handler():
        ids.append(kore.task_id())
        drive_void(inner())
        ids.append(kore.task_id())
    before = (dict(_task._running), dict(_task._tasks))
    _run_void(handler())
    assert ids[0] == ids[2] and ids[1] != ids[0]
    assert (dict(_task._running), dict(_task._tasks)) == before


def test_other_awaitables_and_tracing_take_drive():
    assert drive_void(kore.suspend(1)) is None      # a kore awaitable, not a coroutine
    kore.corotrace(True)
    try:
        async def handler():
            return kore.task_id()
        assert drive_void(handler()) is None
        assert isinstance(drive(handler()), int)
    finally:
        kore.corotrace(False)
