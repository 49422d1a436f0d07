"""Process titles: ``kore [parent]`` and ``kore [wrk N]`` (``kore.setname``)."""

from . import _state

_role = "parent"


def set_role(role):
    global _role
    _role = role
    refresh()


def refresh():
    title = "%s [%s]" % (_state.progname, _role)
    try:
        import setproctitle
        setproctitle.setproctitle(title)
    except ImportError:  # pragma: no cover - setproctitle is a dependency
        pass
    return title
