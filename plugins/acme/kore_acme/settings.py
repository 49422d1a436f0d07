"""The plugin's options and what the application declared.

``DOMAINS`` maps each ``acme=True`` host to the ``(domain, SSLContext)``
pairs the http plugin handed over (one per TLS server the host is on).  It
is filled in the master while TLS contexts are built and inherited by the
workers through fork, so both sides find the contexts to update in place.
"""

import os

from kore import runtime
from kore.config import ConfigError, Option

OWNER = "kore-plugin-acme"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
CHALLENGES = ("tls-alpn-01", "http-01")
DEFAULT_ROOT = "acme-state"

DOMAINS = {}


def options():
    return [
        Option("acme_email", "str", "", "contact e-mail address given to the ACME CA "
               "when the account is registered", owner=OWNER),
        Option("acme_provider", "str", LETS_ENCRYPT, "directory URL of the ACME CA "
               "(default: Let's Encrypt's production directory, as Kore)", owner=OWNER),
        Option("acme_ca_bundle", "str", "", "PEM file of the CA(s) to trust for the "
               "directory's HTTPS (a private CA); default: $REQUESTS_CA_BUNDLE, "
               "$SSL_CERT_FILE, else the system's", owner=OWNER),
        Option("acme_challenge", "choice", "tls-alpn-01", "the challenge to answer: "
               "tls-alpn-01 on the TLS listener (Kore's) or http-01 on a plain one",
               choices=CHALLENGES, owner=OWNER),
        Option("acme_root", "str", "", "state directory for the account key, domain "
               "keys and certificates (Kore's keymgr root); default: %s/ under "
               "the working directory" % DEFAULT_ROOT, owner=OWNER),
        Option("acme_renew_before", "str", "", "renew this long before expiry (30d, "
               "12h, 90m or seconds); default: at 2/3 of the lifetime, 1/2 under "
               "10 days", owner=OWNER),
        Option("acme_retry_min", "int", 60, "seconds before the first retry of a "
               "failed order (doubling after each failure)", minimum=1, owner=OWNER),
        Option("acme_retry_max", "int", 6 * 3600, "longest wait between retries of a "
               "failed order, in seconds", minimum=1, owner=OWNER),
    ]


class Settings:
    """The options, checked (ConfigError naming the option on a mistake)."""

    def __init__(self):
        self.provider = runtime.option("acme_provider").strip()
        if not self.provider.startswith(("https://", "http://")):
            raise ConfigError("option 'acme_provider': %r is not a URL: give the ACME "
                              "directory URL, e.g. %s" % (self.provider, LETS_ENCRYPT))
        self.email = runtime.option("acme_email").strip()
        self.challenge = runtime.option("acme_challenge")
        root = runtime.option("acme_root") or DEFAULT_ROOT
        self.root = os.path.abspath(root)
        try:
            self.renew_before = parse_duration(runtime.option("acme_renew_before"))
        except ValueError as exc:
            raise ConfigError("option 'acme_renew_before': %r: %s"
                              % (runtime.option("acme_renew_before"), exc)) from None
        self.retry_min = runtime.option("acme_retry_min")
        self.retry_max = max(self.retry_min, runtime.option("acme_retry_max"))
        self.verify = self._ca_bundle()

    def _ca_bundle(self):
        for name, value in (("option 'acme_ca_bundle'", runtime.option("acme_ca_bundle")),
                            ("$REQUESTS_CA_BUNDLE", os.environ.get("REQUESTS_CA_BUNDLE")),
                            ("$SSL_CERT_FILE", os.environ.get("SSL_CERT_FILE"))):
            if value:
                path = os.path.abspath(value)
                if not os.path.isfile(path):
                    raise ConfigError("%s: CA bundle %r does not exist (a PEM file of "
                                      "the CAs that sign the ACME directory's HTTPS)"
                                      % (name, value))
                return path
        return True

    def backoff(self, failures):
        return min(self.retry_max, self.retry_min * 2 ** max(0, failures - 1))


def parse_duration(text):
    """"30d", "12h", "90m", "45s" or plain seconds -> timedelta; "" -> None."""
    import datetime
    text = (text or "").strip().lower()
    if not text or text == "0":
        return None
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    mult = 1
    if text[-1] in units:
        mult = units[text[-1]]
        text = text[:-1]
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a duration such as 30d, 12h, 90m or seconds") from None
    if value <= 0:
        raise ValueError("the duration must be positive")
    return datetime.timedelta(seconds=value * mult)


def register(domain, context):
    host = domain.host.lower()
    if domain.wildcard or not host or host.startswith(".") or "." not in host \
            and host != "localhost":
        raise ConfigError("domain '%s': acme=True needs a plain host name (kore.io): "
                          "wildcard names need dns-01, which kore-plugin-acme does "
                          "not answer" % domain.host)
    DOMAINS.setdefault(host, []).append((domain, context))
    return host


def reset():
    DOMAINS.clear()
