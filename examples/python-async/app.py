"""Kore's asynchronous API on kore for Python: one module per primitive.

    korectl run app.py            # then try the URLs in README.md

Module-level code runs once, in the master, before the workers are forked:
the tasks created here (the queue server and the echo server) are started
by every worker, each with its own copy.
"""

import kore

import async_gather
import async_lock
import async_process
import async_queue
import async_socket
import async_tasks
import async_timer

kore.server("default", ip="127.0.0.1", port="8888", tls=False)
kore.domain("*", attach="default")

kore.task_create(async_queue.queue_server())
kore.task_create(async_socket.echo_server())

MODULES = (async_gather, async_lock, async_process, async_queue, async_socket,
           async_tasks, async_timer)
