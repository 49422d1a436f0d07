"""Loading the application as Kore does.

``korectl run`` accepts:

* ``app.py``          a Python file;
* ``pkgdir/``         a directory: a package (with ``__init__.py``), or a
                      directory holding ``app.py`` or ``kore.conf``;
* ``module:attr``     an importable module and the attribute holding the
                      ``koreapp`` object (a class is instantiated);
* ``module``          an importable module;
* ``kore.conf``       a classic configuration file (``python_import``,
                      ``python_path`` and settings, see kore.confparse).

The module is imported once in the master.  Its hooks are found on the
module global ``koreapp`` (``configure``, ``cleanup``, ``workerstart``,
``workerstop``, ``onmsg``, ``signal``) or, Kore's C-style fallbacks, as module
functions (``kore_parent_configure``, ``kore_parent_teardown``,
``kore_worker_configure``, ``kore_worker_teardown``, ``kore_worker_signal``).
"""

import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys

from . import _state
from .config import ConfigError
from .errors import AppLoadError

# koreapp method -> C-style module function
HOOKS = {
    "configure": "kore_parent_configure",
    "cleanup": "kore_parent_teardown",
    "workerstart": "kore_worker_configure",
    "workerstop": "kore_worker_teardown",
    "signal": "kore_worker_signal",
    "onmsg": None,
    "daemonized": None,
    "seccomp": None,
}


class Application:
    def __init__(self, target, args=()):
        self.target = target
        self.args = ["kore"] + list(args)
        self.module = None
        self.modules = []         # every module imported from the app
        self.koreapp = None
        self.root_dir = None      # the directory the app was loaded from
        self.conf = None          # parsed classic conf, if any

    # -- import ------------------------------------------------------------

    def import_app(self):
        """Import (or re-import) the application's module(s)."""
        self._forget_modules()
        for path in _python_paths():
            if path not in sys.path:
                sys.path.insert(0, path)
        target = self.target
        try:
            if target.endswith(".conf") and os.path.isfile(target):
                self._load_conf(target)
            elif os.path.isdir(target):
                self._load_dir(target)
            elif target.endswith(".py") or os.path.isfile(target):
                if not os.path.isfile(target):
                    raise AppLoadError("application file '%s' does not exist" % target)
                self._load_file(target)
            else:
                self._load_module_spec(target)
        except (AppLoadError, ConfigError):
            raise
        except SystemExit as exc:
            raise AppLoadError("application '%s' called exit(%s) while loading"
                               % (target, exc.code)) from exc
        except BaseException as exc:
            raise AppLoadError("failed to import application '%s': %s%s: %s"
                               % (target, user_location(exc), type(exc).__name__,
                                  exc)) from exc
        for extra in _state.registry.get("python_import"):
            self._import_path(extra)
        if self.koreapp is None and self.module is not None:
            self.koreapp = getattr(self.module, "koreapp", None)
        return self

    def _load_file(self, path):
        path = os.path.abspath(path)
        self.root_dir = os.path.dirname(path)
        if self.root_dir not in sys.path:
            sys.path.insert(0, self.root_dir)
        self.module = self._import_path(path)

    def _import_path(self, path):
        path = os.path.abspath(path)
        if os.path.isdir(path):
            return self._load_dir(path)
        name = os.path.splitext(os.path.basename(path))[0]
        if not name.isidentifier():
            name = "kore_app_" + "".join(c if c.isalnum() else "_" for c in name)
        spec = importlib.util.spec_from_file_location(
            name, path, loader=_SourceLoader(name, path) if path.endswith(".py") else None)
        if spec is None:
            raise AppLoadError("cannot import '%s': not a Python file" % path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        self.modules.append(name)
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module

    def _load_dir(self, path):
        path = os.path.abspath(path.rstrip("/"))
        if os.path.isfile(os.path.join(path, "__init__.py")):
            parent, name = os.path.split(path)
            self.root_dir = path
            if parent not in sys.path:
                sys.path.insert(0, parent)
            self.module = importlib.import_module(name)
            self.modules.append(name)
            return self.module
        for candidate in ("app.py", "kore.conf"):
            full = os.path.join(path, candidate)
            if os.path.isfile(full):
                if candidate.endswith(".conf"):
                    return self._load_conf(full)
                self._load_file(full)
                return self.module
        raise AppLoadError("directory '%s' holds no __init__.py, app.py or kore.conf"
                           % path)

    def _load_module_spec(self, target):
        name, _, attr = target.partition(":")
        if not name:
            raise AppLoadError("bad application '%s': expected module:attr" % target)
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        self.module = importlib.import_module(name)
        self.modules.append(name)
        self.root_dir = os.path.dirname(getattr(self.module, "__file__", "") or ".")
        if attr:
            obj = self.module
            for part in attr.split("."):
                try:
                    obj = getattr(obj, part)
                except AttributeError:
                    raise AppLoadError("module '%s' has no attribute '%s'"
                                       % (name, attr)) from None
            if inspect.isclass(obj):
                obj = obj()
            self.koreapp = obj

    def _load_conf(self, path):
        from . import confparse
        self.conf = confparse.load(path, _state.registry)
        self.root_dir = os.path.dirname(os.path.abspath(path))
        for directory in self.conf.python_path:
            if directory not in sys.path:
                sys.path.insert(0, directory)
        if not self.conf.python_import:
            raise AppLoadError("%s: no python_import directive names the application"
                               % path)
        for item in self.conf.python_import:
            module = self._import_path(item)
            if self.module is None:
                self.module = module
        return self.module

    def _forget_modules(self):
        """Drop previously imported app modules so a reload re-imports them."""
        root = self.root_dir
        for name in self.modules:
            sys.modules.pop(name, None)
        if root:
            for name, mod in list(sys.modules.items()):
                f = getattr(mod, "__file__", None)
                if f and os.path.abspath(f).startswith(root + os.sep) \
                        and "site-packages" not in f:
                    sys.modules.pop(name, None)
        self.modules = []
        self.module = None
        self.koreapp = None

    def source_files(self):
        """Files whose change triggers a reload (--reload)."""
        files = set()
        root = self.root_dir
        for mod in list(sys.modules.values()):
            f = getattr(mod, "__file__", None)
            if not f:
                continue
            f = os.path.abspath(f)
            if root and f.startswith(root + os.sep) and "site-packages" not in f:
                files.add(f)
        if self.conf is not None:
            files.add(self.conf.path)
        return sorted(files)

    # -- hooks --------------------------------------------------------------

    def hook(self, name):
        """Return the callable for a Kore app hook, or None."""
        if self.koreapp is not None:
            fn = getattr(self.koreapp, name, None)
            if fn is not None and callable(fn):
                return fn
        fallback = HOOKS.get(name)
        if fallback and self.module is not None:
            fn = getattr(self.module, fallback, None)
            if callable(fn):
                return fn
        return None

    def call(self, name, *args):
        """Call a hook if the app defines it; coroutines are driven."""
        fn = self.hook(name)
        if fn is None:
            return None
        result = fn(*args)
        if inspect.iscoroutine(result):
            from .aio import drive
            result = drive(result)
        return result

    def configure(self):
        try:
            self.call("configure", list(self.args))
        except AppLoadError:
            raise
        except SystemExit as exc:
            raise AppLoadError("koreapp.configure() called exit(%s)" % exc.code) from exc
        except ConfigError:
            raise
        except Exception as exc:
            import traceback
            raise AppLoadError("koreapp.configure() raised %s%s: %s\n%s"
                               % (user_location(exc), type(exc).__name__, exc,
                                  traceback.format_exc().rstrip())) from exc


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """The application file is compiled from its source at every load,
    never taken from ``__pycache__``: a cached file is trusted when the
    source's size and modification second match, so an edit that keeps the
    size within the second of the last load (``VERSION = "v2"``) then a HUP
    would start the old code."""

    def get_code(self, fullname):
        return self.source_to_code(self.get_data(self.path), self.path)


_OWN = ("kore", "importlib", "pluggy", "runpy", "gevent")


def user_location(exc):
    """"FILE, line N: " of the innermost traceback frame in the user's code
    (not kore's packages, importlib or pluggy), or "" when there is none:
    a mistake reported by kore names where the user made it."""
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        mod = frame.f_globals.get("__name__", "") or ""
        top = mod.split(".", 1)[0]
        own = top in _OWN or top.startswith("kore_") or top.startswith("_frozen")
        if not own and not frame.f_code.co_filename.startswith("<"):
            found = "%s, line %d: " % (frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _python_paths():
    try:
        return list(_state.registry.get("python_path"))
    except Exception:
        return []
