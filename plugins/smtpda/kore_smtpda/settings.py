"""SMTP servers, options and the spool location.

Servers are declared while the application is configured (in the master),
so every worker inherits the table through fork and the agent receives it
(passwords included) through a pipe, never through the spool: a spool file
names its server.  ``"default"`` is the server of ``kore.enable_smtpda`` /
the ``smtpda_server`` option; ``kore.smtpda_server(name, ...)`` adds more.
"""

import os

from kore import ConfigError, runtime
from kore.config import Option

OWNER = "kore-plugin-smtpda"
DEFAULT_SPOOL_DIR = "smtpda-spool"

# the agent's settings that the plugin passes on, with their option names
AGENT_OPTIONS = ("smtpda_max_retry", "smtpda_keep_days", "smtpda_backoff_min",
                 "smtpda_backoff_max", "smtpda_max_lifetime", "smtpda_concurrency",
                 "smtpda_timeout", "smtpda_cafile", "smtpda_tls_verify",
                 "smtpda_helo_name", "smtpda_poll_interval", "logfile", "log_level",
                 "runas", "deployment")


class Server:
    __slots__ = ("name", "host", "port", "user", "password", "ssl", "auth_without_tls")

    def __init__(self, name, host, port, user=None, password=None, ssl=False,
                 auth_without_tls=False):
        self.name = name
        self.host = host
        self.port = port
        self.user = user or None
        self.password = password or None
        self.ssl = bool(ssl)
        self.auth_without_tls = bool(auth_without_tls)

    def to_dict(self, secrets=False):
        d = {"name": self.name, "host": self.host, "port": self.port,
             "ssl": self.ssl, "user": self.user,
             "auth_without_tls": self.auth_without_tls}
        if secrets:
            d["password"] = self.password
        return d

    def __repr__(self):
        return "<smtp server %s %s:%d%s>" % (self.name, self.host, self.port,
                                             " ssl" if self.ssl else "")


class State:
    def __init__(self):
        self.reset()

    def reset(self):
        self.servers = {}           # name -> Server (declared by the app)
        self.enabled = False        # kore.enable_smtpda() / smtpda_server()
        self.spool = None           # absolute path, resolved at app load
        self.configured = False


STATE = State()


def parse_address(server, what="server"):
    """``"host:port"`` / ``"host"`` / ``"[v6]:port"`` -> (host, port) (25 by default)."""
    if not isinstance(server, str) or not server.strip():
        raise ValueError("%s must be 'host:port' (a non-empty string), not %r"
                         % (what, server))
    s = server.strip()
    if s.startswith("["):
        host, sep, rest = s[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("%s %r: expected '[address]:port'" % (what, server))
        port = rest[1:] if rest else "25"
    elif s.count(":") == 1:
        host, port = s.split(":")
    elif ":" in s:
        host, port = s, "25"             # bare IPv6 address
    else:
        host, port = s, "25"
    try:
        port = int(port)
    except ValueError:
        raise ValueError("%s %r: port '%s' is not a number" % (what, server, port)) from None
    if not host or not 0 < port < 65536:
        raise ValueError("%s %r: expected 'host:port' with a port 1-65535" % (what, server))
    return host, port


def make_server(name, server, user=None, password=None, ssl=None, auth_without_tls=False):
    host, port = parse_address(server)
    if ssl is None:
        ssl = port == 465
    if password and not user:
        raise ValueError("SMTP server %r: a password without a user" % server)
    return Server(name, host, port, user, password, ssl, auth_without_tls)


def declare(server):
    if runtime.registry().frozen:
        raise RuntimeError("SMTP servers are declared while the app is configured "
                           "(in configure() or at import), not at runtime")
    STATE.servers[server.name] = server
    STATE.enabled = True


def smtpda_server(name, server, user=None, password=None, ssl=None, auth_without_tls=False):
    """Declare SMTP server ``name`` for ``composer.set_smtp(name)``."""
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError("kore.smtpda_server: name must be a non-empty string")
    if name == "default":
        raise ValueError("kore.smtpda_server: 'default' is the server of "
                         "kore.enable_smtpda() / option smtpda_server")
    declare(make_server(name, server, user, password, ssl, auth_without_tls))
    return True


def enable_smtpda(server=None, user=None, password=None, ssl=None, max_retry=None,
                  keep_days=None):
    """Skitai's ``enable_smtpda``: start the delivery agent; the arguments set
    the options ``smtpda_server``, ``smtpda_user``, ``smtpda_password``,
    ``smtpda_ssl``, ``smtpda_max_retry`` and ``smtpda_keep_days``."""
    reg = runtime.registry()
    for opt, value in (("smtpda_server", server), ("smtpda_user", user),
                       ("smtpda_password", password), ("smtpda_ssl", ssl),
                       ("smtpda_max_retry", max_retry), ("smtpda_keep_days", keep_days)):
        if value is not None:
            reg.set(opt, value, "app")
    STATE.enabled = True
    return True


def options():
    O = Option
    return [
        O("smtpda_server", "str", "", "the default SMTP server, 'host:port' (port 25 "
          "if absent); setting it starts the delivery agent", flags=("--smtpda-server",),
          owner=OWNER),
        O("smtpda_user", "str", "", "user name for AUTH on the default server", owner=OWNER),
        O("smtpda_password", "str", "", "password for AUTH on the default server "
          "(KORE_SMTPDA_PASSWORD keeps it out of files)", owner=OWNER),
        O("smtpda_ssl", "yesno", False, "implicit TLS to the default server (also "
          "used when its port is 465)", owner=OWNER),
        O("smtpda_auth_without_tls", "yesno", False, "allow AUTH to the default "
          "server over a connection without TLS (never do this across a network)",
          owner=OWNER),
        O("smtpda_spool", "str", "", "spool directory (default: smtpda-spool under "
          "the app's directory, or under root when set)", owner=OWNER),
        O("smtpda_max_retry", "int", 10, "delivery attempts before a message is "
          "undeliverable", minimum=1, owner=OWNER),
        O("smtpda_keep_days", "float", 3.0, "days undeliverable messages are kept "
          "before they are removed", minimum=0, owner=OWNER),
        O("smtpda_backoff_min", "float", 300.0, "seconds before the first retry "
          "(Postfix minimal_backoff_time)", minimum=0, owner=OWNER),
        O("smtpda_backoff_max", "float", 4000.0, "largest delay between retries "
          "(Postfix maximal_backoff_time)", minimum=0, owner=OWNER),
        O("smtpda_max_lifetime", "float", 5 * 86400.0, "seconds a message may wait "
          "in the spool before it is undeliverable (Postfix maximal_queue_lifetime)",
          minimum=0, owner=OWNER),
        O("smtpda_concurrency", "int", 4, "messages delivered at the same time",
          minimum=1, maximum=200, owner=OWNER),
        O("smtpda_timeout", "float", 120.0, "seconds an SMTP connect or reply may "
          "take", minimum=1, owner=OWNER),
        O("smtpda_cafile", "str", "", "extra CA certificates (PEM) trusted for "
          "the SMTP servers' certificates", owner=OWNER),
        O("smtpda_tls_verify", "yesno", True, "verify SMTP servers' certificates "
          "and host names", owner=OWNER),
        O("smtpda_helo_name", "str", "", "name sent in EHLO (default: this host's "
          "fully qualified name)", owner=OWNER),
        O("smtpda_poll_interval", "float", 2.0, "seconds between scans of the spool "
          "for messages the agent was not told about", minimum=0.05, owner=OWNER),
    ]


def resolve(app):
    """At app load (master): default server, spool path, validation."""
    reg = runtime.registry()
    if reg.get("smtpda_server"):
        try:
            server = make_server("default", reg.get("smtpda_server"),
                                 reg.get("smtpda_user"), reg.get("smtpda_password"),
                                 True if reg.get("smtpda_ssl") else None,
                                 reg.get("smtpda_auth_without_tls"))
        except ValueError as exc:
            raise ConfigError("option 'smtpda_server': %s" % exc) from None
        STATE.servers["default"] = server
        STATE.enabled = True
    elif reg.get("smtpda_user") or reg.get("smtpda_password"):
        raise ConfigError("option 'smtpda_user'/'smtpda_password' set without "
                          "'smtpda_server': name the SMTP server too")
    if reg.get("smtpda_backoff_max") < reg.get("smtpda_backoff_min"):
        raise ConfigError("option 'smtpda_backoff_max' (%g) is smaller than "
                          "'smtpda_backoff_min' (%g)" % (reg.get("smtpda_backoff_max"),
                                                        reg.get("smtpda_backoff_min")))
    cafile = reg.get("smtpda_cafile")
    if cafile and not os.path.isfile(cafile):
        raise ConfigError("option 'smtpda_cafile': file '%s' does not exist" % cafile)
    base = reg.get("root") or (app.root_dir if app is not None and app.root_dir
                               else os.getcwd())
    spool = reg.get("smtpda_spool") or DEFAULT_SPOOL_DIR
    spool = os.path.abspath(os.path.join(base, spool))
    STATE.spool = spool
    STATE.configured = True
    if STATE.enabled:
        from . import spool as spoolmod
        try:
            spoolmod.ensure(spool)
        except OSError as exc:
            raise ConfigError("option 'smtpda_spool': cannot create '%s': %s"
                              % (spool, exc.strerror)) from None
        if not os.access(spool, os.W_OK):
            raise ConfigError("option 'smtpda_spool': '%s' is not writable" % spool)
    return spool


def worker_spool():
    """The spool path as this process sees it (a chroot'ed worker sees it
    relative to ``root``)."""
    spool = STATE.spool
    if spool is None or os.path.isdir(spool):
        return spool
    root = runtime.option("root")
    if root:
        root = os.path.abspath(root)
        if spool.startswith(root.rstrip("/") + "/"):
            inside = "/" + os.path.relpath(spool, root)
            if os.path.isdir(inside):
                return inside
    return spool


def find_server(server, user=None, password=None, ssl=False):
    """The spool reference for ``composer.set_smtp(...)``'s arguments: a
    declared server's name, or host/port/ssl for a server without AUTH."""
    if not user and not password and server in STATE.servers:
        return server
    host, port = parse_address(server)
    ssl = bool(ssl) or port == 465
    if not user:
        if password:
            raise ValueError("set_smtp: a password without a user")
        for s in STATE.servers.values():
            if (s.host, s.port, s.ssl, s.user) == (host, port, bool(ssl), None):
                return s.name
        return {"host": host, "port": port, "ssl": bool(ssl)}
    import hmac
    for s in STATE.servers.values():
        if (s.host, s.port, s.ssl, s.user) == (host, port, bool(ssl), user) and \
                hmac.compare_digest((s.password or "").encode(), (password or "").encode()):
            return s.name
    raise ValueError(
        "set_smtp(%r, user=%r): no declared SMTP server has these credentials; "
        "passwords are never written to the spool, so declare the server while the "
        "app is configured: kore.enable_smtpda(...) or kore.smtpda_server(name, "
        "server, user, password) and pass its name to set_smtp()" % (server, user))


def agent_config():
    """Everything the agent process needs (passed through a pipe)."""
    reg = runtime.registry()
    cfg = {opt: reg.get(opt) for opt in AGENT_OPTIONS}
    cfg["spool"] = STATE.spool
    cfg["servers"] = {name: s.to_dict(secrets=True) for name, s in STATE.servers.items()}
    return cfg
