"""kore's asynchronous runtime: Kore's coroutine API on gevent greenlets.

There is no asyncio event loop.  A kore awaitable blocks the current greenlet
on gevent (timers, events, fd readiness) inside its ``__await__`` and returns
its value without ever yielding, so ``drive(coro)`` runs a whole coroutine
with a single ``coro.send(None)`` while gevent runs other greenlets
underneath.  See docs/async.md.
"""

from ._proc import proc, split_command
from ._socket import socket, socket_wrap
from ._sync import TaskKilled, gather, lock, queue, suspend, timer
from ._task import (Task, coroname, corotrace, current, drive, drive_void,
                    start_deferred, task_create, task_id, task_kill)

__all__ = ["coroname", "corotrace", "current", "drive", "drive_void", "gather", "lock",
           "proc", "queue", "socket", "socket_wrap", "split_command", "start_deferred",
           "suspend", "Task", "TaskKilled", "task_create", "task_id",
           "task_kill", "timer"]
