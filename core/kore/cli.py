"""``korectl``: run an application, inspect plugins and configuration.

    korectl run [options] APP [app arguments...]
    korectl config show [options] APP [app arguments...]
    korectl config options
    korectl plugins
    korectl version

Exit codes: 0 ok, 1 stopped by a fatal error, 2 configuration or usage
error, 3 a worker failed to boot, 4 the application failed to load.
"""

import argparse
import os
import sys

from . import _state, exitcodes, signals
from .config import ConfigError
from .errors import AppLoadError, PluginLoadError

EXIT_CONFIG = exitcodes.CONFIG_ERROR
EXIT_APP_LOAD = exitcodes.APP_LOAD_ERROR


def _fail(msg, code=EXIT_CONFIG):
    sys.stderr.write("korectl: %s\n" % msg)
    sys.stderr.flush()
    return code


def _add_option_flags(parser):
    """Add a flag for every option that declares one."""
    for name, opt in sorted(_state.registry.options.items()):
        if not opt.flags:
            continue
        kw = {"dest": "opt_" + name, "default": None,
              "help": "%s [option %s, env KORE_%s]" % (opt.help, name, name.upper())}
        if opt.kind == "yesno":
            kw["action"] = "store_const"
            kw["const"] = True
        elif opt.kind == "list":
            kw["action"] = "append"
            kw["metavar"] = name.upper()
        else:
            kw["metavar"] = name.upper()
        parser.add_argument(*opt.flags, **kw)


def _apply_cli(args):
    for name in _state.registry.options:
        value = getattr(args, "opt_" + name, None)
        if value is not None:
            if isinstance(value, list):
                value = [x.strip() for v in value for x in v.split(",") if x.strip()]
            _state.registry.set(name, value, "cli")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="korectl", description="kore for Python: run Kore Python applications")
    parser.add_argument("--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run an application",
                         description="Run APP (file.py, a package directory, "
                         "module:attr or kore.conf); extra arguments go to "
                         "koreapp.configure(args).")
    _add_option_flags(run)
    run.add_argument("app", metavar="APP")
    run.add_argument("app_args", nargs=argparse.REMAINDER, metavar="ARGS")

    cfg = sub.add_parser("config", help="inspect the configuration")
    cfgsub = cfg.add_subparsers(dest="config_command")
    show = cfgsub.add_parser("show", help="print every effective option and "
                             "where its value came from")
    _add_option_flags(show)
    show.add_argument("app", metavar="APP")
    show.add_argument("app_args", nargs=argparse.REMAINDER, metavar="ARGS")
    cfgsub.add_parser("options", help="list every option with its default")

    sub.add_parser("plugins", help="list the installed plugins and their hooks")
    sub.add_parser("version", help="print the version")
    pm = _state.pm
    if pm is not None:
        pm.hook.kore_cli_options(parser=run)
        pm.hook.kore_cli_commands(subparsers=sub, app_arguments=add_app_arguments,
                                  load_app=load_app)
    return parser


def add_app_arguments(parser):
    """Give a subcommand ``korectl run``'s option flags and ``APP [ARGS...]``."""
    _add_option_flags(parser)
    parser.add_argument("app", metavar="APP")
    parser.add_argument("app_args", nargs=argparse.REMAINDER, metavar="ARGS")


def load_app(args):
    """Import and configure ``args.app`` as ``korectl run`` would, without
    serving it; return the ``kore.application.Application``.  Raises
    ConfigError or AppLoadError, which korectl reports with its exit codes."""
    loader = AppLoader(args.app, args.app_args)
    _apply_cli(args)
    _state.registry.load_env()
    return loader()


class AppLoader:
    """Import and configure the app; called again on every reload."""

    def __init__(self, target, app_args):
        self.target = target
        self.app_args = app_args
        self.app = None

    def __call__(self):
        from . import confparse
        from .application import Application
        pm = _state.pm
        reg = _state.registry
        previous = self.app
        pm.hook.kore_app_reset()
        reg.reset_app()
        del _state.deferred[:]
        _state.tracer = None
        _state.role = "master"
        app = Application(self.target, self.app_args)
        if previous is not None:
            app.root_dir = previous.root_dir
            app.modules = previous.modules
        _state.app = app
        file_opt = reg.get("file")
        if file_opt and not self.target.endswith(".conf"):
            from . import confparse as cp
            app.conf = cp.load(file_opt, reg)
        app.import_app()
        app.configure()
        file_opt = reg.get("file")
        if file_opt and getattr(app, "conf", None) is None \
                and not self.target.endswith(".conf"):
            # kore.config.file set by the application itself: read it now
            app.conf = confparse.load(file_opt, reg)
        confparse.apply(app)
        pm.hook.kore_app_loaded(app=app)
        from . import privdrop
        privdrop.check(reg.get("root"), reg.get("runas"))
        reg.check_unsupported()
        reg.frozen = True
        self.app = app
        return app


def _load_plugins():
    from . import plugins
    return plugins.install()


def cmd_run(args):
    from .log import LOG, warning
    loader = AppLoader(args.app, args.app_args)
    try:
        _apply_cli(args)
        _state.registry.load_env()
        app = loader()
    except ConfigError as exc:
        return _fail("configuration error: %s" % exc)
    except AppLoadError as exc:
        return _fail(str(exc), EXIT_APP_LOAD)
    reg = _state.registry
    production = reg.get("deployment") == "production"
    LOG.role = "parent"
    LOG.configure(level=reg.get("log_level"), path=reg.get("logfile"),
                  use_syslog=production)
    for w in reg.warnings:
        warning(w)
    from .arbiter import Arbiter
    arbiter = Arbiter(app, loader)
    try:
        arbiter.bind()
    except ConfigError as exc:
        return _fail("configuration error: %s" % exc)
    except OSError as exc:
        return _fail("cannot open listener: %s" % exc)
    if production:
        _daemonize()
        # Kore calls koreapp.daemonized() in the daemonised master
        try:
            app.call("daemonized")
        except Exception:
            from .trace import report
            report(where="koreapp.daemonized()")
    return arbiter.run()


def _daemonize():
    """Detach from the terminal (deployment = production)."""
    import gevent
    from gevent import monkey
    fork = monkey.get_original("os", "fork")
    if fork():
        os._exit(0)
    os.setsid()
    if fork():
        os._exit(0)
    gevent.reinit()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def cmd_config_show(args):
    loader = AppLoader(args.app, args.app_args)
    try:
        _apply_cli(args)
        _state.registry.load_env()
        loader()
    except ConfigError as exc:
        return _fail("configuration error: %s" % exc)
    except AppLoadError as exc:
        return _fail(str(exc), EXIT_APP_LOAD)
    rows = _state.registry.snapshot()
    width = max(len(r[0]) for r in rows)
    for name, value, source, owner in rows:
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, list):
            value = ",".join(value)
        sys.stdout.write("%-*s  %-24s  (%s)\n" % (width, name, value, source))
    return 0


def cmd_config_options():
    for name, opt in sorted(_state.registry.options.items()):
        default = opt.default() if callable(opt.default) else opt.default
        flags = (" [" + ", ".join(opt.flags) + "]") if opt.flags else ""
        sys.stdout.write("%s = %r  (%s; %s)%s\n    %s\n"
                         % (name, default, opt.describe(), opt.owner, flags, opt.help))
    return 0


def main(argv=None, held_signals=None):
    """``korectl``.  ``held_signals`` is the list the entry point's holding
    handler fills (``kore.signals``); without one, holding starts here."""
    argv = sys.argv[1:] if argv is None else list(argv)
    signals.hold(held_signals)
    try:
        pm, infos = _load_plugins()
    except PluginLoadError as exc:
        return _fail(str(exc))
    except ConfigError as exc:
        return _fail("configuration error: %s" % exc)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        signals.release_held()     # only a serving master handles them later
    if args.version or args.command == "version":
        import kore
        sys.stdout.write("kore-core %s\n" % kore.__version__)
        for info in infos:
            sys.stdout.write("%s %s\n" % (info.dist, info.version))
        return 0
    if args.command == "plugins":
        from .plugins import print_plugins
        print_plugins(infos, pm)
        return 0
    if args.command == "run":
        return cmd_run(args)
    command = getattr(args, "kore_command", None)
    if command is not None:
        try:
            return command(args)
        except ConfigError as exc:
            return _fail("configuration error: %s" % exc)
        except AppLoadError as exc:
            return _fail(str(exc), EXIT_APP_LOAD)
    if args.command == "config":
        if args.config_command == "show":
            return cmd_config_show(args)
        if args.config_command == "options":
            return cmd_config_options()
        parser.parse_args(["config", "--help"])
    parser.print_help()
    return EXIT_CONFIG
