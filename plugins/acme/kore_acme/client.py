"""The ACME conversation, with certbot's ``acme`` library (master only).

``Account`` holds the account key and registration for one directory URL:
created once, saved in the state directory and reused after a restart (a
CA that forgot it, ``accountDoesNotExist``, gets a new registration).
``Account.order(host, key_pem, publisher)`` runs one order: new order, the
challenge of the configured type for each pending authorization published
to the workers through ``publisher`` (and withdrawn afterwards), answer,
poll and finalize; it returns the PEM chain.

The HTTP client is ``requests`` (cooperative: korectl monkey-patches the
master).  ``badNonce`` is retried by the library once; ``Failure`` carries
what the scheduler needs: whether to retry and a ``Retry-After`` the CA
asked for (``rateLimited``).
"""

import datetime
import email.utils
import time

import josepy as jose
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import hashes

from . import certs

USER_AGENT = "kore-plugin-acme (certbot-acme)"
TLS_ALPN = "tls-alpn-01"
HTTP_01 = "http-01"
NETWORK_TIMEOUT = 30
ORDER_TIMEOUT = 240          # Kore's order timeout
_PREFIX = "urn:ietf:params:acme:error:"


class Failure(Exception):
    """An order or registration failed; ``retry_after`` in seconds or None."""

    def __init__(self, text, retry_after=None):
        super().__init__(text)
        self.retry_after = retry_after


def _retry_after_seconds(value):
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(int(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


class TLSALPN01Response(challenges.ChallengeResponse):
    """The answer to tls-alpn-01: an empty JSON object (RFC 8737 section 3).

    ``acme`` 3+ dropped its TLS-ALPN-01 classes, and an object without
    fields is falsy, which ``ClientNetwork`` would send as an empty
    POST-as-GET instead of ``{}``.
    """
    typ = TLS_ALPN

    def __bool__(self):
        return True


class _Network(client.ClientNetwork):
    """ClientNetwork that keeps the ``Retry-After`` of an error response."""

    @classmethod
    def _check_response(cls, response, content_type=None):
        try:
            return super()._check_response(response, content_type=content_type)
        except messages.Error as exc:
            exc.kore_retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            raise


def describe(exc):
    """One line for the log."""
    if isinstance(exc, messages.Error):
        return "%s: %s" % (exc.code or exc.typ, exc.detail or "")
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else exc
        text = str(getattr(reason, "reason", reason))
        i = text.find("[Errno")
        if i >= 0:
            text = text[i:].rstrip("')\"")
        return "cannot reach the CA (%s)" % text
    if isinstance(exc, requests.exceptions.Timeout):
        return "the CA did not answer in time"
    if isinstance(exc, errors.ValidationError):
        parts = []
        for authzr in exc.failed_authzrs:
            for ch in authzr.body.challenges:
                if ch.error is not None:
                    parts.append("%s %s: %s" % (authzr.body.identifier.value, ch.chall.typ,
                                                ch.error.detail or ch.error.code))
        return "validation failed: " + ("; ".join(parts) or "no detail")
    return "%s: %s" % (type(exc).__name__, exc)


def _typ(challb):
    chall = challb.chall
    if isinstance(chall, challenges.UnrecognizedChallenge):
        return chall.jobj.get("type")
    return getattr(chall, "typ", None)


def _token(challb):
    chall = challb.chall
    if isinstance(chall, challenges.UnrecognizedChallenge):
        return chall.jobj.get("token")
    return jose.b64encode(chall.token).decode("ascii")


class Account:
    def __init__(self, provider, verify, email, store, log):
        self.provider = provider
        self.verify = verify
        self.email = email
        self.store = store
        self.log = log
        self.net = None
        self.acme = None

    # -- registration -------------------------------------------------------------

    def _key(self):
        pem = self.store.account_key(self.provider)
        if pem is None:
            pem = certs.new_account_key()
            self.store.save_account_key(self.provider, pem)
            self.log("info", "new ACME account key in %s"
                     % self.store.account_key_path(self.provider))
        return jose.JWKRSA(key=certs.load_key(pem))

    def connect(self):
        """Directory and account; raises Failure."""
        try:
            if self.net is None:
                self.net = _Network(self._key(), alg=jose.RS256, verify_ssl=self.verify,
                                    user_agent=USER_AGENT, timeout=NETWORK_TIMEOUT)
            if self.acme is None:
                directory = client.ClientV2.get_directory(self.provider, self.net)
                self.acme = client.ClientV2(directory, self.net)
            if self.net.account is None:
                saved = self.store.account(self.provider)
                if saved:
                    self.net.account = messages.RegistrationResource.json_loads(saved)
                else:
                    self._register()
        except Failure:
            raise
        except Exception as exc:
            self.acme = None
            raise Failure(describe(exc), getattr(exc, "kore_retry_after", None)) from exc

    def _register(self):
        fields = {"terms_of_service_agreed": True}
        if self.email:
            fields["email"] = self.email
        regr = self.acme.new_account(messages.NewRegistration.from_data(**fields))
        self.store.save_account(self.provider, regr.json_dumps())
        self.log("notice", "ACME account registered at %s: %s" % (self.provider, regr.uri))

    def thumbprint(self):
        return jose.b64encode(self.net.key.thumbprint(hash_function=hashes.SHA256)).decode()

    # -- one order ------------------------------------------------------------------

    def order(self, host, key_pem, challenge, publisher):
        """Return the PEM full chain for ``host``; raises Failure."""
        self.connect()
        try:
            return self._order(host, key_pem, challenge, publisher)
        except messages.Error as exc:
            if exc.typ == _PREFIX + "accountDoesNotExist":
                self.log("warning", "the CA does not know the saved ACME account: "
                         "registering again")
                self.store.forget_account(self.provider)
                self.net.account = None
            raise Failure(describe(exc), getattr(exc, "kore_retry_after", None)) from exc
        except Failure:
            raise
        except Exception as exc:
            if isinstance(exc, (requests.exceptions.RequestException, errors.ClientError)):
                self.acme = None        # fetch the directory again next time
            raise Failure(describe(exc)) from exc

    def _order(self, host, key_pem, challenge, publisher):
        csr = crypto_util.make_csr(key_pem, [host])
        orderr = self.acme.new_order(csr)
        published = []
        try:
            for authzr in orderr.authorizations:
                if authzr.body.status == messages.STATUS_VALID:
                    continue
                name = authzr.body.identifier.value
                challb = next((c for c in authzr.body.challenges if _typ(c) == challenge),
                              None)
                if challb is None:
                    offered = ", ".join(sorted(str(_typ(c)) for c in authzr.body.challenges))
                    raise Failure("the CA offers no %s challenge for %s (it offers %s)"
                                  % (challenge, name, offered))
                key_auth = certs.key_authorization(_token(challb), self.thumbprint())
                if challenge == TLS_ALPN:
                    cert, key = certs.alpn_challenge(name, key_auth)
                    item = publisher.publish_alpn(name, cert, key)
                    response = TLSALPN01Response()
                else:
                    item = publisher.publish_http(_token(challb), key_auth)
                    response = challenges.HTTP01Response(key_authorization=key_auth)
                published.append(item)
                # ClientNetwork.post, not ClientV2.answer_challenge: that one
                # insists on a Link "up" header pebble 2.4 does not send
                self.net.post(challb.uri, response,
                              new_nonce_url=self.acme.directory["newNonce"])
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=ORDER_TIMEOUT)
            started = time.monotonic()
            orderr = self.acme.poll_and_finalize(orderr, deadline)
            self.log("info", "ACME order for %s finalized in %.1f s"
                     % (host, time.monotonic() - started))
        finally:
            for item in published:
                publisher.withdraw(item)
        if not orderr.fullchain_pem:
            raise Failure("the CA returned no certificate")
        return orderr.fullchain_pem.encode("ascii")
