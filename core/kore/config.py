"""Configuration options: declaration, validation, precedence and sources.

Every option is declared once, by the kernel or by the plugin that owns it,
as an ``Option``.  Values may come from four places; the effective value is
the one from the highest of::

    command line  >  environment (KORE_<OPTION>)  >  application code  >  default

``kore.config`` (an instance of ``ConfigProxy``) is what applications see:
``kore.config.workers = 2`` sets the value from application code, and reading
an attribute returns the effective value.  A wrong value or an unknown option
raises ``ConfigError`` naming the option and what it accepts.
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

SOURCES = ("default", "app", "env", "cli")
_RANK = {name: rank for rank, name in enumerate(SOURCES)}

_YES = {"yes", "on", "true", "1"}
_NO = {"no", "off", "false", "0"}

# Options that belong to a plugin, with the package that declares them, so a
# setting for a plugin that is not installed gets a useful message.
PLUGIN_OPTION_PREFIXES = (
    ("http_", "kore-plugin-http"),
    ("tls_", "kore-plugin-http"),
    ("filemap_", "kore-plugin-http"),
    ("websocket_", "kore-plugin-websocket"),
    ("pgsql_", "kore-plugin-pgsql"),
    ("curl_", "kore-plugin-curl"),
    ("acme_", "kore-plugin-acme"),
    ("cron_", "kore-plugin-cron"),
    ("smtpda_", "kore-plugin-smtpda"),
    ("proxy_", "kore-plugin-proxy"),
    ("gateway_", "kore-plugin-gateway"),
)


class ConfigError(Exception):
    """A configuration mistake that stops start-up."""


class Option:
    """One configuration option.

    kind is one of ``int``, ``float``, ``str``, ``yesno`` (Kore's "yes"/"no";
    Python bools are accepted too), ``choice`` (one of ``choices``) or
    ``list`` (a list of strings; a comma-separated string is split).
    ``flag`` names the ``korectl run`` flag(s) bound to it, ``env`` turns the
    ``KORE_<NAME>`` environment variable off when False.  ``accumulate``
    (list options): each assignment from the application adds to the list
    instead of replacing it, as Kore's ``kore.config.http_media_type = ...``.
    """

    __slots__ = ("name", "kind", "default", "help", "choices", "minimum",
                 "maximum", "flags", "env", "owner", "aliases", "normalize",
                 "dead", "accumulate", "unsupported")

    def __init__(self, name: str, kind: str, default: Any, help: str = "",
                 choices: Optional[Iterable[str]] = None,
                 minimum: Optional[float] = None, maximum: Optional[float] = None,
                 flags: Sequence[str] = (), env: bool = True, owner: str = "kore-core",
                 aliases: Optional[Mapping[str, str]] = None,
                 normalize: Optional[Callable[[Any], Any]] = None,
                 dead: Optional[str] = None, accumulate: bool = False,
                 unsupported: Optional[str] = None) -> None:
        self.name = name
        self.kind = kind
        self.accumulate = accumulate
        self.unsupported = unsupported   # set at all: start-up stops with this
        self.default = default
        self.help = help
        self.choices = tuple(choices) if choices else None
        self.minimum = minimum
        self.maximum = maximum
        self.flags = tuple(flags)
        self.env = env
        self.owner = owner
        self.aliases = dict(aliases or {})
        self.normalize = normalize
        self.dead = dead

    def describe(self) -> str:
        """Say in words which values are valid."""
        if self.kind == "int":
            lo = "" if self.minimum is None else ">= %d" % self.minimum
            hi = "" if self.maximum is None else "<= %d" % self.maximum
            rng = " and ".join(x for x in (lo, hi) if x)
            return "an integer" + (" " + rng if rng else "")
        if self.kind == "float":
            return "a number" + ("" if self.minimum is None else " >= %g" % self.minimum)
        if self.kind == "yesno":
            return '"yes" or "no" (or True/False)'
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices or ())
        if self.kind == "list":
            return "a list of strings (or a comma-separated string)"
        return "a string"

    def convert(self, value: Any) -> Any:
        """Return the validated value or raise ConfigError."""
        bad = ConfigError("bad value %r for option '%s': expected %s"
                          % (value, self.name, self.describe()))
        kind = self.kind
        if kind == "int":
            if isinstance(value, bool):
                raise bad
            if isinstance(value, str):
                try:
                    value = int(value.strip(), 0)
                except ValueError:
                    raise bad from None
            elif not isinstance(value, int):
                raise bad
            if self.minimum is not None and value < self.minimum:
                raise bad
            if self.maximum is not None and value > self.maximum:
                raise bad
        elif kind == "float":
            if isinstance(value, bool):
                raise bad
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise bad from None
            if self.minimum is not None and value < self.minimum:
                raise bad
        elif kind == "yesno":
            if isinstance(value, bool):
                pass
            elif isinstance(value, int) and value in (0, 1):
                value = bool(value)
            elif isinstance(value, str) and value.strip().lower() in _YES:
                value = True
            elif isinstance(value, str) and value.strip().lower() in _NO:
                value = False
            else:
                raise bad
        elif kind == "choice":
            if not isinstance(value, str):
                raise bad
            value = self.aliases.get(value.strip().lower(), value.strip().lower())
            if value not in (self.choices or ()):
                raise bad
        elif kind == "list":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, (list, tuple)):
                if not all(isinstance(v, str) for v in value):
                    raise bad
                value = list(value)
            else:
                raise bad
        else:
            if isinstance(value, bytes):
                value = value.decode()
            if not isinstance(value, str):
                raise bad
        if self.normalize is not None:
            value = self.normalize(value)
        return value


class Registry:
    """All declared options and their values, with where each came from."""

    def __init__(self) -> None:
        self.options: dict[str, Option] = {}
        self._values: dict[str, dict[str, Any]] = {}   # name -> {source: value}
        self.frozen = False
        self.warnings: list[str] = []

    def add(self, option: Option) -> None:
        if option.name in self.options:
            raise ConfigError("option '%s' declared twice (by %s and %s)"
                              % (option.name, self.options[option.name].owner,
                                 option.owner))
        self.options[option.name] = option

    def remove(self, name: str) -> None:
        """Undeclare option ``name`` and forget its values (tests, tools)."""
        self.options.pop(name, None)
        self._values.pop(name, None)

    def reset(self, name: str, source: Optional[str] = None) -> None:
        """Forget the value ``source`` gave option ``name`` (every source's
        when None): ``get`` then answers from the next source down."""
        if source is not None and source not in _RANK:
            raise ValueError("unknown option source %r (one of %s)"
                             % (source, ", ".join(SOURCES)))
        values = self._values.get(name)
        if not values:
            return
        if source is None:
            values.clear()
        else:
            values.pop(source, None)

    def option(self, name: str) -> Option:
        opt = self.options.get(name)
        if opt is None:
            raise ConfigError(unknown_option_message(name, self.options))
        return opt

    def set(self, name: str, value: Any, source: str = "app") -> None:
        if self.frozen and source == "app":
            # Kore's own (garbled) wording, kept on purpose: docs/config.md.
            raise RuntimeError("configured cannot be changed at runtime")
        opt = self.option(name)
        value = opt.convert(value)
        if opt.dead:
            self.warnings.append("option '%s': %s" % (name, opt.dead))
        values = self._values.setdefault(name, {})
        if opt.accumulate and source == "app" and source in values:
            value = list(values[source]) + list(value)
        values[source] = value

    def get(self, name: str) -> Any:
        opt = self.option(name)
        values = self._values.get(name)
        if values:
            for source in ("cli", "env", "app"):
                if source in values:
                    return values[source]
        return opt.default() if callable(opt.default) else opt.default

    def source(self, name: str) -> str:
        values = self._values.get(name) or {}
        for source in ("cli", "env", "app"):
            if source in values:
                return source
        return "default"

    def is_set(self, name: str) -> bool:
        return self.source(name) != "default"

    def load_env(self, environ: Optional[Mapping[str, str]] = None) -> None:
        """Read ``KORE_<OPTION>`` variables for every declared option."""
        environ = os.environ if environ is None else environ
        for name, opt in self.options.items():
            if not opt.env:
                continue
            key = "KORE_" + name.upper()
            if key in environ:
                try:
                    self.set(name, environ[key], "env")
                except ConfigError as exc:
                    raise ConfigError("%s (from environment variable %s)"
                                      % (exc, key)) from None
        for key in sorted(environ):
            if key.startswith("KORE_") and key not in OTHER_ENV:
                name = key[5:].lower()
                if name in self.options and self.options[name].env:
                    continue
                close = difflib.get_close_matches(name, list(self.options), 1, 0.6)
                hint = (": did you mean KORE_%s (option %s)?" % (close[0].upper(), close[0])
                        if close else "; korectl config options lists them")
                self.warnings.append("environment variable %s names no option%s"
                                     % (key, hint))

    def check_unsupported(self) -> None:
        """Stop start-up (ConfigError) when an option this implementation
        cannot honour was set: never accepted and silently ignored."""
        for name, opt in sorted(self.options.items()):
            if opt.unsupported and self.is_set(name):
                raise ConfigError("option '%s' (set from %s): %s"
                                  % (name, self.source(name), opt.unsupported))

    def reset_app(self) -> None:
        """Forget values set by application code (before a reload)."""
        self.frozen = False
        for values in self._values.values():
            values.pop("app", None)

    def snapshot(self) -> list[tuple[str, Any, str, str]]:
        """Return ``[(name, value, source, owner)]`` sorted by name."""
        return [(name, self.get(name), self.source(name), opt.owner)
                for name, opt in sorted(self.options.items())]


# kernel options that carry a plugin's prefix (Kore's names for processes
# that do not exist here): they do not show that the plugin is installed
_KERNEL_WITH_PLUGIN_PREFIX = frozenset({"acme_runas"})


def unknown_option_message(name: str, options: Iterable[str]) -> str:
    for prefix, package in PLUGIN_OPTION_PREFIXES:
        if name.startswith(prefix) and not any(
                o.startswith(prefix) and o not in _KERNEL_WITH_PLUGIN_PREFIX
                for o in options):
            return ("unknown option '%s': it belongs to %s, which is not "
                    "installed (pip install %s)" % (name, package, package))
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.6)
    if close:
        return "unknown option '%s' (did you mean %s?)" % (
            name, " or ".join("'%s'" % c for c in close))
    return "unknown option '%s'; see 'korectl config options' for the list" % name


class ConfigProxy:
    """``kore.config``: set options from application code, read effective values."""

    __slots__ = ("_registry",)

    def __init__(self, registry: Registry) -> None:
        object.__setattr__(self, "_registry", registry)

    def __setattr__(self, name: str, value: Any) -> None:
        self._registry.set(name, value, "app")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._registry.get(name)
        except ConfigError as exc:
            raise AttributeError(str(exc)) from None

    def __dir__(self) -> list[str]:
        return sorted(self._registry.options)

    def __repr__(self) -> str:
        return "<kore.config %d options>" % len(self._registry.options)


#: KORE_* variables that are not options (read by korectl, the plugin loader
#: and the cron plugin's jobs)
OTHER_ENV = frozenset({
    "KORE_PLUGINS", "KORE_DISABLE_PLUGIN_AUTOLOAD", "KORE_TRACE_HOOKS",
    "KORE_CRON_CLOCK", "KORE_CRON_JOB", "KORE_CRON_SCHEDULED",
})


def _workers_default() -> int:
    return os.cpu_count() or 1


def kernel_options() -> list[Option]:
    """The options the kernel owns (Kore's defaults unless noted in docs/)."""
    O = Option
    return [
        O("workers", "int", _workers_default, "number of worker processes "
          "(default: CPU count)", minimum=1, flags=("-w", "--workers")),
        O("worker_max_connections", "int", 512, "connections a worker holds "
          "before it stops accepting", minimum=1, flags=("--worker-connections",)),
        O("worker_rlimit_nofiles", "int", 768, "RLIMIT_NOFILE of each worker",
          minimum=16),
        O("worker_accept_threshold", "int", 16, "connections accepted per "
          "readiness event", minimum=1),
        O("worker_death_policy", "choice", "restart", "what to do when a worker "
          "dies", choices=("restart", "terminate")),
        O("worker_set_affinity", "int", 1, "pin each worker to a CPU (0 or 1)",
          minimum=0, maximum=1),
        O("worker_no_accept", "yesno", False, "workers accept no connections "
          "(they run tasks and timers only), as Kore"),
        O("pidfile", "str", "", "file the master writes its pid to",
          flags=("-p", "--pid")),
        O("socket_backlog", "int", 5000, "listen() backlog", minimum=1,
          flags=("--backlog",)),
        O("deployment", "choice", "dev", "dev runs in the foreground, "
          "production daemonises, chroots and drops privileges",
          choices=("dev", "production", "docker"),
          aliases={"development": "dev"}, flags=("--deployment",)),
        O("root", "str", "", "directory to chroot (production) or chdir (dev) "
          "into", flags=("--chdir",)),
        O("runas", "str", "", "user the workers run as", flags=("-u", "--user")),
        O("keep_root", "yesno", False, "a production master started as root "
          "without runas serves as root instead of refusing to start",
          flags=("--keep-root",)),
        O("keymgr_root", "str", "", "Kore's key manager root (no such process "
          "here: setting it stops start-up)",
          unsupported="kore for Python has no key manager process: keys come "
          "from cert=/key= files, or from kore-plugin-acme whose state "
          "directory is acme_root; remove keymgr_root (or set acme_root)"),
        O("keymgr_runas", "str", "", "Kore's key manager user (no such process "
          "here: setting it stops start-up)",
          unsupported="kore for Python has no key manager process (the master "
          "holds ACME keys); remove keymgr_runas"),
        O("acme_runas", "str", "", "Kore's acme process user (no such process "
          "here: setting it stops start-up)",
          unsupported="kore for Python has no acme process: kore-plugin-acme "
          "runs in the master and the workers run as runas; remove acme_runas"),
        O("seccomp", "yesno", True, "Linux: workers run under a seccomp filter "
          "(Kore's sandbox; kore.seccomp); no turns it off"),
        O("seccomp_tracing", "yesno", False, "Linux: a syscall outside the "
          "workers' seccomp policy is logged and allowed instead of killing "
          "the worker (Kore's)"),
        O("pledge", "str", "", "OpenBSD only; ignored elsewhere"),
        O("rand_file", "str", "", "file whose bytes seed OpenSSL's random pool "
          "at start-up; fresh bytes are written back at stop (Kore's)"),
        O("logfile", "str", "", "write the log to this file instead of "
          "stdout/syslog", flags=("--log-file", "--error-logfile")),
        O("log_level", "choice", "info", "lowest level written to the log",
          choices=("debug", "info", "notice", "warning", "error"),
          flags=("--log-level",)),
        O("graceful_timeout", "float", 30.0, "seconds in-flight requests get "
          "to finish on TERM or reload", minimum=0, flags=("--graceful-timeout",)),
        O("worker_timeout", "float", 30.0, "seconds a worker's event loop may "
          "stay blocked before the master logs its stack and replaces it "
          "(gunicorn's --timeout; 0 disables)", minimum=0,
          flags=("-t", "--timeout")),
        O("reload", "yesno", False, "restart workers when a source file "
          "changes (development)", flags=("--reload",)),
        O("file", "str", "", "a classic kore.conf file to read",
          flags=("-c", "--config")),
        O("python_path", "list", [], "directories added to the module search "
          "path before the app is imported (Kore's python_path)",
          flags=("--python-path",)),
        O("python_import", "list", [], "extra Python files or packages to "
          "import with the app (Kore's python_import)", flags=("--python-import",)),
    ]
