"""Process-wide state of the kernel (one instance per process).

Set by the master before fork and inherited by workers; ``role`` tells which
process this is.  Private to the kernel: plugins use ``kore.runtime``, which
is the contract (a test keeps ``kore._state`` out of every plugin).
"""

from .config import Registry, kernel_options

role = None            # None (library use), "master" or "worker"
registry = Registry()  # every option, see kore.config
for _opt in kernel_options():
    registry.add(_opt)
del _opt

pm = None              # the pluggy PluginManager, see kore.plugins
app = None             # kore.application.Application once loaded
arbiter = None         # kore.arbiter.Arbiter in the master
worker = None          # kore.workerproc.Worker (or a bridge's worker) in a worker
tracer = None          # callback set by kore.tracer()
app_object = None      # value stored by kore.app(obj)
deferred = []          # [(start_fn, args)] run in every worker at start-up
progname = "kore"      # kore.setname()
plugins = []           # [kore.plugins.PluginInfo] loaded in this process
