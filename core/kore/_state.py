"""Process-wide state of the kernel (one instance per process).

Set by the master before fork and inherited by workers; ``role`` tells which
process this is.  Private to the kernel: plugins use ``kore.runtime``, which
is the contract (a test keeps ``kore._state`` out of every plugin).
"""

from typing import Any, List, Optional

from .config import Registry, kernel_options

role: Optional[str] = None   # None (library use), "master" or "worker"
registry = Registry()  # every option, see kore.config
for _opt in kernel_options():
    registry.add(_opt)
del _opt

pm: Any = None         # the pluggy PluginManager, see kore.plugins
app: Any = None        # kore.application.Application once loaded
arbiter: Any = None    # kore.arbiter.Arbiter in the master
worker: Any = None     # kore.workerproc.Worker (or a bridge's worker) in a worker
tracer: Any = None     # callback set by kore.tracer()
app_object: Any = None  # value stored by kore.app(obj)
deferred: List[Any] = []  # [(start_fn, args)] run in every worker at start-up
progname = "kore"      # kore.setname()
plugins: List[Any] = []  # [kore.plugins.PluginInfo] loaded in this process
