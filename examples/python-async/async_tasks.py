"""kore.task_create, task_kill, task_id and coroname.

    curl http://127.0.0.1:8888/tasks

The handler starts a task that counts until it is killed.
"""

import kore


async def counter(progress):
    kore.coroname("counter")
    try:
        while True:
            await kore.suspend(10)
            progress.append(kore.task_id())
    finally:
        progress.append("killed")


@kore.route("/tasks", methods=["get"])
async def tasks_handler(req):
    progress = []
    tid = kore.task_create(counter(progress))
    await kore.suspend(55)
    killed = kore.task_kill(tid)
    req.response(200, b"handler %d ran task %d: %d ticks, killed=%s, last=%s\n"
                 % (kore.task_id(), tid, len(progress) - 1, str(killed).encode(),
                    progress[-1].encode()))
