"""kore.queue: a task created at import time serves requests through a queue.

    curl http://127.0.0.1:8888/queue?msg=hello
"""

import kore

# The queue the server task reads.  Created in the master; every worker
# gets its own copy along with its own copy of the task.
requests = kore.queue()


async def queue_server():
    kore.coroname("queue-server")
    while True:
        job = await requests.pop()
        reply = "worker %d, task %d: %s" % (kore.worker(), kore.task_id(), job["msg"])
        job["reply"].push(reply)


@kore.route("/queue", methods=["get"], get={"msg": "^[a-zA-Z0-9 ]{1,64}$"})
async def queue_handler(req):
    req.populate_get()
    reply = kore.queue()          # a queue of our own for the answer
    requests.push({"msg": req.argument("msg") or "hello", "reply": reply})
    answer = await reply.pop()
    req.response(200, answer.encode())
