"""drive(), task_create/task_kill/task_id, coroname/corotrace, deferred start."""

import asyncio
import gc
import warnings

import gevent
import pytest

import kore
from kore import _state
from kore.aio import _task, drive, start_deferred
from kore.log import LOG
from kore_testing import gevent_wait_for


# -- drive ---------------------------------------------------------------------

def test_drive_returns_value_without_loop(run):
    async def coro():
        await kore.suspend(1)
        return 42
    assert run(coro()) == 42


def test_drive_propagates_exception(run):
    async def coro():
        await kore.suspend(0)
        raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        run(coro())


def test_drive_plain_coroutine_without_awaits():
    async def coro():
        return "x"
    assert drive(coro()) == "x"


def test_drive_rejects_non_coroutine():
    with pytest.raises(TypeError):
        drive(42)


def test_foreign_future_is_a_type_error_naming_it(run):
    loop = asyncio.new_event_loop()
    try:
        fut = loop.create_future()

        async def handler():
            await fut
        with pytest.raises(TypeError) as info:
            run(handler())
        msg = str(info.value)
        assert "Future" in msg and "not a kore awaitable" in msg
        assert "handler" in msg
    finally:
        loop.close()


def test_foreign_asyncio_sleep_is_a_type_error(run):
    async def handler():
        await asyncio.sleep(0)
    with pytest.raises(TypeError, match=r"handler' awaited coroutine asyncio.tasks.sleep\(\)"):
        run(handler())


def test_foreign_await_can_be_caught_and_coroutine_continues(run):
    async def handler():
        try:
            await asyncio.sleep(0)
        except TypeError:
            pass
        await kore.suspend(1)
        return "recovered"
    assert run(handler()) == "recovered"


def test_foreign_await_twice_closes_coroutine(run):
    closed = []

    async def handler():
        try:
            try:
                await asyncio.sleep(0)
            except TypeError:
                await asyncio.sleep(0)
        finally:
            closed.append(True)
    with pytest.raises(TypeError):
        run(handler())
    assert closed == [True]


def test_other_greenlets_run_while_handler_is_suspended(run):
    order = []

    async def slow():
        order.append("slow start")
        await kore.suspend(30)
        order.append("slow end")

    async def fast():
        order.append("fast")
    g1 = gevent.spawn(drive, slow())
    g2 = gevent.spawn(drive, fast())
    gevent.joinall([g1, g2], timeout=5)
    assert order == ["slow start", "fast", "slow end"]


# -- task ids ------------------------------------------------------------------

def test_task_id_outside_coroutine():
    with pytest.raises(RuntimeError, match="no coroutine active"):
        kore.task_id()


def test_task_id_in_driven_coroutine_and_nested(run):
    async def inner():
        return kore.task_id()

    async def outer():
        mine = kore.task_id()
        nested = drive(inner())
        return mine, nested, kore.task_id()
    a, b, c = run(outer())
    assert isinstance(a, int) and a == c and b != a


def test_task_create_returns_int_and_runs():
    seen = []

    async def coro(x):
        seen.append((x, kore.task_id()))
    tid = kore.task_create(coro(7))
    assert isinstance(tid, int)
    assert gevent_wait_for(lambda: seen)
    assert seen == [(7, tid)]


def test_task_create_rejects_non_coroutine():
    async def f():
        pass
    with pytest.raises(TypeError, match="coroutine"):
        kore.task_create(f)
    with pytest.raises(TypeError):
        kore.task_create(None)


def test_task_exception_goes_to_tracer_and_hook(reports, monkeypatch):
    calls = []

    class Hook:
        def kore_task_error(self, task, exc_info):
            calls.append((task, exc_info[1]))

        def kore_handler_error(self, req, exc_info):
            pass

    class PM:
        hook = Hook()
    monkeypatch.setattr(_state, "pm", PM())

    async def bad():
        await kore.suspend(1)
        raise KeyError("oops")
    tid = kore.task_create(bad())
    assert gevent_wait_for(lambda: reports and calls)
    assert len(reports) == 1 and isinstance(reports[0], KeyError)
    assert len(calls) == 1 and calls[0][0].id == tid


def test_task_exception_logged_without_tracer(monkeypatch):
    lines = []
    monkeypatch.setattr(LOG, "write", lambda prio, msg: lines.append(msg))

    async def bad():
        raise ValueError("logged")
    kore.task_create(bad())
    assert gevent_wait_for(
        lambda: any("logged" in line and "coroutine" in line for line in lines))


def test_task_kill_suspended_task_runs_finally():
    started, state = [], []

    async def forever():
        started.append(1)
        try:
            while True:
                await kore.suspend(10)
        finally:
            state.append("cleaned")
    tid = kore.task_create(forever())
    assert gevent_wait_for(lambda: started)
    assert kore.task_kill(tid) is True
    assert state == ["cleaned"]
    assert kore.task_kill(tid) is False


def test_task_kill_unknown_id():
    assert kore.task_kill(987654321) is False


def test_task_kill_running_coroutine_is_refused(run):
    async def me():
        with pytest.raises(RuntimeError, match="active coroutine"):
            kore.task_kill(kore.task_id())
        return True
    assert run(me())


def test_task_kill_from_another_task():
    events = []
    started = []

    async def victim():
        started.append(1)
        try:
            await kore.suspend(5000)
        finally:
            events.append("victim done")

    async def killer(tid):
        while not started:          # the victim is suspended now
            await kore.suspend(1)
        events.append(kore.task_kill(tid))
    v = kore.task_create(victim())
    kore.task_create(killer(v))
    assert gevent_wait_for(lambda: len(events) == 2)
    assert events == ["victim done", True]


def test_task_kill_before_start_closes_coroutine_without_warning():
    ran = []

    async def never():
        ran.append(1)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tid = kore.task_create(never())
        assert kore.task_kill(tid) is True
        gevent.sleep(0.01)
        gc.collect()
    assert ran == []
    assert not [x for x in w if "never awaited" in str(x.message)]


def test_task_kill_handler_driven_in_greenlet(run):
    state = []

    async def handler():
        state.append(kore.task_id())
        try:
            await kore.suspend(5000)
        finally:
            state.append("finally")
    g = gevent.spawn(drive, handler())
    assert gevent_wait_for(lambda: state)
    assert kore.task_kill(state[0]) is True
    g.join(2)
    assert g.dead and state[1] == "finally"


# -- names and tracing ---------------------------------------------------------

def test_coroname_outside_coroutine():
    with pytest.raises(RuntimeError, match="only available in coroutines"):
        kore.coroname("x")


def test_corotrace_logs_state_changes(run, monkeypatch):
    lines = []
    monkeypatch.setattr(LOG, "write", lambda prio, msg: lines.append((prio, msg)))

    async def traced():
        kore.coroname("worker-a")
        await kore.suspend(1)
        return 1
    kore.corotrace(True)
    try:
        run(traced())
    finally:
        kore.corotrace(False)
    msgs = [m for _, m in lines]
    assert any(m.startswith("coro ") and "running <traced>" in m for m in msgs)
    assert any("coro 'worker-a' suspended <traced> @ [test_task.py:" in m for m in msgs)
    assert any("coro 'worker-a' wokeup" in m for m in msgs)
    assert all(p == kore.LOG_NOTICE for p, _ in lines)


def test_corotrace_off_logs_nothing(run, monkeypatch):
    lines = []
    monkeypatch.setattr(LOG, "write", lambda prio, msg: lines.append(msg))

    async def quiet():
        await kore.suspend(1)
    run(quiet())
    assert lines == []


# -- deferred start (app module code in the master) --------------------------

def test_task_create_in_master_is_deferred(master_role):
    seen = []

    async def coro():
        seen.append(kore.task_id())
    tid = kore.task_create(coro())
    gevent.sleep(0.01)
    assert seen == [] and len(master_role) == 1
    # what a freshly forked worker does
    _state.role = "worker"
    start_deferred()
    assert gevent_wait_for(lambda: seen)
    assert seen == [tid]
    assert master_role == []


def test_task_kill_in_master_removes_deferred_task(master_role):
    async def coro():
        pass
    tid = kore.task_create(coro())
    assert kore.task_kill(tid) is True
    assert master_role == []
    assert kore.task_kill(tid) is False
    _task._close_unstarted(_task._master_tasks[-1].coro)


def test_start_deferred_reports_failures(master_role, reports):
    def boom():
        raise RuntimeError("bad start")
    master_role.append((boom, ()))
    _state.role = "worker"
    start_deferred()
    assert [str(e) for e in reports] == ["bad start"]


def test_task_kill_does_not_hang_on_a_coroutine_that_ignores_it(monkeypatch):
    from kore.aio import _task as t
    monkeypatch.setattr(t, "KILL_WAIT", 0.1)
    lines = []
    monkeypatch.setattr(LOG, "write", lambda prio, msg: lines.append(msg))
    stop, state = [], []

    async def stubborn():
        state.append("running")
        while not stop:
            try:
                await kore.suspend(10)
            except BaseException:
                pass
        state.append("ended")
    tid = kore.task_create(stubborn())
    assert gevent_wait_for(lambda: state)
    assert kore.task_kill(tid) is True
    assert any("still runs" in m for m in lines)
    stop.append(1)
    assert gevent_wait_for(lambda: state == ["running", "ended"])


def test_drive_accepts_any_kore_awaitable():
    q = kore.queue()
    q.push("v")
    assert drive(kore.suspend(1)) is None
    assert drive(q.pop()) == "v"


def test_asyncio_awaitables_get_the_documented_type_error():
    async def handler():
        await asyncio.sleep(0.01)      # looks for a loop before yielding

    with pytest.raises(TypeError, match=r"awaited asyncio\.tasks\.sleep\(\), which is "
                                        r"not a kore awaitable"):
        drive(handler())


def test_a_kore_awaitable_never_awaited_is_warned_about(monkeypatch):
    lines = []
    monkeypatch.setattr(LOG, "write", lambda prio, msg: lines.append(msg))

    async def handler():
        kore.suspend(300)              # missing await
        await kore.suspend(0)
        return "done"

    assert drive(handler()) == "done"
    gc.collect()
    err = "\n".join(lines)
    assert "<kore.suspend 300 ms> created at %s" % __file__ in err
    assert "was never awaited" in err and "kore.suspend 0 ms" not in err
