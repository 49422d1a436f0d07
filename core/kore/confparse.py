"""Classic ``kore.conf`` files (Kore's configuration syntax).

Supported: top-level settings (``workers 2``, any option of kore.config),
``python_path DIR``, ``python_import FILE``, and the blocks::

    server NAME {
        bind 127.0.0.1 8888        # or: unix /path/to.sock
        tls no
    }
    domain HOST {
        attach NAME
        certfile cert.pem
        certkey key.pem
        client_verify ca.pem
        verify_depth 1
        accesslog access.log
        route /path handler_function [methods get post]
        route ^/re/([a-z]+)$ {
            handler module.function
            methods get post
        }
        filemap /static/ webroot
    }

A block named after a plugin's option prefix sets that plugin's options::

    smtpda {
        server 127.0.0.1:25         # = smtpda_server 127.0.0.1:25
        max_retry 10
    }

Handlers are looked up after the app was imported: ``name`` (a function of
the app module), ``koreapp.name`` or ``module.function``.

A block a plugin owns (``RAW_BLOCKS``: ``cron { ... }`` of kore-plugin-cron)
is kept as its raw lines, ``conf.blocks[name] = [(lineno, text), ...]``, for
that plugin to read in ``kore_app_loaded``.
"""

import os
import shlex

from .config import ConfigError


class Conf:
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.python_path = []
        self.python_import = []
        self.servers = []   # (name, {bind: [(ip, port)], unix: [...], tls: bool})
        self.domains = []   # (host, {attach, certfile, ..., routes, filemaps})
        self.blocks = {}    # plugin block name -> [(lineno, raw line)]


# Top-level blocks read by a plugin, with the option prefix and the package
# that shows the plugin is installed.
RAW_BLOCKS = {"cron": ("cron_", "kore-plugin-cron")}


def _tokens(path):
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            yield lineno, line, raw.strip()


def _words(where, line):
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise ConfigError("%s: %s" % (where, exc)) from None


def load(path, registry):
    if not os.path.isfile(path):
        raise ConfigError("configuration file '%s' does not exist" % path)
    conf = Conf(path)
    base = os.path.dirname(conf.path)
    stack = []          # open blocks: [kind, name, dict]
    raw_block = None    # name of the plugin block being read
    for lineno, line, raw in _tokens(path):
        where = "%s:%d" % (path, lineno)
        if raw_block is not None:
            if line == "}":
                raw_block = None
            else:
                conf.blocks[raw_block].append((lineno, raw))
            continue
        words = _words(where, line)
        if words[-1:] == ["{"] and len(words) == 2 and not stack \
                and words[0] in RAW_BLOCKS:
            prefix, package = RAW_BLOCKS[words[0]]
            if not any(o.startswith(prefix) for o in registry.options):
                raise ConfigError("%s: block '%s' belongs to %s, which is not "
                                  "installed (pip install %s)"
                                  % (where, words[0], package, package))
            raw_block = words[0]
            conf.blocks.setdefault(raw_block, [])
            continue
        if words == ["}"]:
            if not stack:
                raise ConfigError("%s: '}' without an open block" % where)
            kind, name, body = stack.pop()
            if kind == "server":
                conf.servers.append((name, body))
            elif kind == "domain":
                conf.domains.append((name, body))
            elif kind == "route":
                stack[-1][2]["routes"].append((name, body))
            continue
        opens = words[-1] == "{"
        if opens:
            words = words[:-1]
        key = words[0]
        args = words[1:]
        if opens:
            if key == "server" and not stack and len(args) == 1:
                stack.append(["server", args[0], {"bind": [], "unix": [], "tls": True}])
            elif key == "domain" and not stack and len(args) == 1:
                stack.append(["domain", args[0], {"routes": [], "filemaps": [],
                                                   "attach": None}])
            elif key == "route" and stack and stack[-1][0] == "domain" and len(args) == 1:
                stack.append(["route", args[0], {"handler": None, "methods": None}])
            elif not stack and not args and any(o.startswith(key + "_")
                                                for o in registry.options):
                stack.append(["section", key, None])
            else:
                raise ConfigError("%s: unexpected block '%s'" % (where, " ".join(words)))
            continue
        if stack:
            kind, name, body = stack[-1]
            if kind == "section":
                if not args:
                    raise ConfigError("%s: setting '%s' has no value" % (where, key))
                try:
                    registry.set(name + "_" + key, " ".join(args), "app")
                except ConfigError as exc:
                    raise ConfigError("%s: %s" % (where, exc)) from None
            elif kind == "server":
                if key == "bind" and len(args) == 2:
                    body["bind"].append((args[0], args[1]))
                elif key == "unix" and len(args) == 1:
                    body["unix"].append(os.path.join(base, args[0]))
                elif key == "tls" and len(args) == 1:
                    body["tls"] = args[0].lower() in ("yes", "on", "true", "1")
                else:
                    raise ConfigError("%s: unknown server setting '%s'" % (where, key))
            elif kind == "domain":
                if key == "route" and len(args) >= 2:
                    methods = None
                    if len(args) > 2:
                        if args[2] != "methods":
                            raise ConfigError("%s: expected 'route PATH HANDLER "
                                              "[methods m...]'" % where)
                        methods = args[3:]
                    body["routes"].append((args[0], {"handler": args[1],
                                                     "methods": methods}))
                elif key == "filemap" and len(args) == 2:
                    body["filemaps"].append((args[0], os.path.join(base, args[1])))
                elif key in ("attach", "certfile", "certkey", "client_verify",
                             "verify_depth", "accesslog", "acme") and len(args) == 1:
                    body[key] = args[0]
                else:
                    raise ConfigError("%s: unknown domain setting '%s'" % (where, key))
            else:  # route block
                if key == "handler" and len(args) == 1:
                    body["handler"] = args[0]
                elif key == "methods" and args:
                    body["methods"] = args
                else:
                    raise ConfigError("%s: unknown route setting '%s'" % (where, key))
            continue
        if key == "python_path" and len(args) == 1:
            conf.python_path.append(os.path.join(base, args[0]))
        elif key == "python_import" and len(args) == 1:
            conf.python_import.append(os.path.join(base, args[0]))
        elif len(args) >= 1:
            try:
                registry.set(key, " ".join(args), "app")
            except ConfigError as exc:
                raise ConfigError("%s: %s" % (where, exc)) from None
        else:
            raise ConfigError("%s: setting '%s' has no value" % (where, key))
    if raw_block is not None:
        raise ConfigError("%s: block '%s' is not closed" % (path, raw_block))
    if stack:
        raise ConfigError("%s: block '%s %s' is not closed" % (path, stack[-1][0],
                                                              stack[-1][1]))
    return conf


def resolve_handler(app, name):
    module = app.module
    if name.startswith("koreapp.") and app.koreapp is not None:
        fn = getattr(app.koreapp, name.split(".", 1)[1], None)
    elif "." in name:
        import importlib
        modname, _, attr = name.rpartition(".")
        fn = getattr(importlib.import_module(modname), attr, None)
    else:
        fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError("%s: handler '%s' not found" % (app.conf.path, name))
    return fn


def apply(app):
    """Create the servers, domains and routes a conf file declared."""
    conf = app.conf
    if conf is None or not (conf.servers or conf.domains):
        return
    import kore
    for name, body in conf.servers:
        for ip, port in body["bind"]:
            kore.server(name, ip=ip, port=port, tls=body["tls"])
        for path in body["unix"]:
            kore.server(name, path=path, tls=body["tls"])
    for host, body in conf.domains:
        kw = {}
        if body.get("attach"):
            kw["attach"] = body["attach"]
        if body.get("certfile"):
            kw["cert"] = body["certfile"]
        if body.get("certkey"):
            kw["key"] = body["certkey"]
        if body.get("client_verify"):
            kw["client_verify"] = body["client_verify"]
        if body.get("verify_depth"):
            kw["verify_depth"] = int(body["verify_depth"])
        if body.get("acme"):
            value = body["acme"].lower()
            if value not in ("yes", "no"):
                raise ConfigError("%s: domain %s: 'acme %s': expected yes or no"
                                  % (conf.path, host, body["acme"]))
            kw["acme"] = value == "yes"
        dom = kore.domain(host, **kw)
        if body.get("accesslog"):
            dom.accesslog = body["accesslog"]
        for path, route in body["routes"]:
            if not route["handler"]:
                raise ConfigError("%s: route %s has no handler" % (conf.path, path))
            rkw = {}
            if route["methods"]:
                rkw["methods"] = route["methods"]
            dom.route(path, resolve_handler(app, route["handler"]), **rkw)
        if body["filemaps"]:
            dom.filemaps(dict(body["filemaps"]))
