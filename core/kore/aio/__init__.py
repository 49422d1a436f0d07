"""kore's asynchronous runtime (work in progress)."""


def _todo(*a, **kw):
    raise NotImplementedError("kore.aio: not implemented yet")


coroname = corotrace = gather = lock = proc = queue = socket_wrap = _todo
suspend = task_create = task_id = task_kill = timer = _todo


def drive(coro):
    try:
        coro.send(None)
    except StopIteration as exc:
        return exc.value
    raise TypeError("coroutine awaited a foreign awaitable")


def start_deferred():
    pass
