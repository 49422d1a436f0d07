"""Skitai's ``kore.set_worker_critical_point(cpu_percent=90.0, continuous=3,
interval=20)``: the master samples each worker's CPU every ``interval``
seconds; a worker above ``cpu_percent`` for ``continuous`` samples in a row
is replaced gracefully (SIGTERM: in-flight requests finish, the arbiter
starts a new worker).  ``interval=0`` turns it off (the default)."""


class CriticalPoint:
    __slots__ = ("cpu_percent", "continuous", "interval")

    def __init__(self, cpu_percent, continuous, interval):
        self.cpu_percent = cpu_percent
        self.continuous = continuous
        self.interval = interval


CRITICAL = None


def set_worker_critical_point(cpu_percent=90.0, continuous=3, interval=20):
    global CRITICAL
    try:
        cpu_percent = float(cpu_percent)
        continuous = int(continuous)
        interval = float(interval)
    except (TypeError, ValueError):
        raise ValueError("kore.set_worker_critical_point: cpu_percent, continuous "
                         "and interval must be numbers") from None
    if not 0 < cpu_percent <= 100 * 1024:
        raise ValueError("kore.set_worker_critical_point: cpu_percent must be > 0, "
                         "got %r" % cpu_percent)
    if continuous < 1:
        raise ValueError("kore.set_worker_critical_point: continuous must be >= 1")
    if interval < 0:
        raise ValueError("kore.set_worker_critical_point: interval must be >= 0 "
                         "(0 turns it off)")
    CRITICAL = CriticalPoint(cpu_percent, continuous, interval)


def reset():
    global CRITICAL
    CRITICAL = None
