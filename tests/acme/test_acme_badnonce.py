"""badNonce, deterministically, against a real pebble: the plugin's ACME
client (``kore_acme.client.Account``, what the master runs) with the first
nonce of every request replaced by one pebble never issued.

Pebble's own random rejection (5 % by default, on in test_acme_tlsalpn.py)
may or may not hit a given run; here every POST meets a badNonce once and
must be retried, and two in a row fail the order with a ``Failure`` that
the master's scheduler retries later.  ``PEBBLE_VA_ALWAYS_VALID`` spares
the challenge responder (order and finalize logic only: the responders are
tested in the other modules).  A second ``Account`` on the same state
directory, as after a restart, orders with the saved account.
"""

import os
import re

import pytest
from acme import client as acme_client
from acme import messages

from acme_pebble import Pebble, Ports
from kore_acme import certs, client, store

pytestmark = pytest.mark.slow


class Publisher:
    """What the master's Manager does for the Account: here, only records."""

    def __init__(self):
        self.published, self.withdrawn = [], []

    def publish_http(self, token, value):
        self.published.append(("http-01", token, value))
        return len(self.published)

    def publish_alpn(self, name, cert, key):
        self.published.append(("tls-alpn-01", name, cert))
        return len(self.published)

    def withdraw(self, item):
        self.withdrawn.append(item)


@pytest.fixture(scope="module")
def pebble(tmp_path_factory):
    work = tmp_path_factory.mktemp("acme-nonce")
    with Ports() as ports:
        p = Pebble(work / "pebble", http_port=ports.take(), tls_port=ports.take(),
                   nonce_reject=0, env={"PEBBLE_VA_ALWAYS_VALID": "1"},
                   ports=ports).start()
        try:
            yield p
        finally:
            p.stop()


@pytest.fixture
def stale_nonces(monkeypatch):
    """Replace the nonce of the attempts ``which(n)`` picks (n counts every
    nonce taken); record each POST's outcome."""
    state = {"taken": 0, "bad": [], "ok": [], "which": lambda n: n % 2 == 1}
    real_nonce = acme_client.ClientNetwork._get_nonce
    real_once = acme_client.ClientNetwork._post_once

    def get_nonce(self, url, new_nonce_url):
        nonce = real_nonce(self, url, new_nonce_url)
        state["taken"] += 1
        if state["which"](state["taken"]):
            return os.urandom(16)           # well-formed, never issued by pebble
        return nonce

    def post_once(self, url, *args, **kwargs):
        try:
            response = real_once(self, url, *args, **kwargs)
        except messages.Error as exc:
            if exc.code == "badNonce":
                state["bad"].append(url)
            raise
        state["ok"].append(url)
        return response

    monkeypatch.setattr(acme_client.ClientNetwork, "_get_nonce", get_nonce)
    monkeypatch.setattr(acme_client.ClientNetwork, "_post_once", post_once)
    return state


def _account(pebble, root, logs):
    return client.Account(pebble.url, pebble.ca, "nonce@localhost.test",
                          store.Store(str(root)), lambda level, text: logs.append(text))


def _accounts_and_orders(pebble):
    plog = pebble.log()
    return (len(re.findall(r"There are now \d+ accounts in memory", plog)),
            plog.count("Added order"))


def test_every_request_meets_a_bad_nonce_once(pebble, stale_nonces, tmp_path):
    logs, pub = [], Publisher()
    accounts, orders = _accounts_and_orders(pebble)
    acct = _account(pebble, tmp_path / "state", logs)
    key = certs.new_domain_key()
    chain = acct.order("localhost", key, "http-01", pub)
    ci = certs.CertInfo(chain)
    assert ci.matches_key(key) and ci.covers("localhost")
    assert "Pebble" in ci.leaf.issuer.rfc4514_string()
    # newAccount, newOrder, the authorization, the challenge, finalize, the
    # order and the certificate: each POST was rejected once, then accepted
    ok, bad = stale_nonces["ok"], stale_nonces["bad"]
    assert len(ok) >= 6, ok
    assert sorted(bad) == sorted(ok), (bad, ok)
    assert [p[0] for p in pub.published] == ["http-01"]
    assert pub.withdrawn == [1]
    assert any("ACME account registered" in line for line in logs)

    # a second Account on the same state directory (a restarted master)
    # orders with the saved account: the CA sees one account, two orders
    again_logs = []
    again = _account(pebble, tmp_path / "state", again_logs)
    again.order("localhost", certs.new_domain_key(), "tls-alpn-01", Publisher())
    assert not any("registered" in line for line in again_logs), again_logs
    assert _accounts_and_orders(pebble) == (accounts + 1, orders + 2)


def test_two_bad_nonces_in_a_row_fail_the_order_for_a_later_retry(pebble, stale_nonces,
                                                                   tmp_path):
    logs = []
    acct = _account(pebble, tmp_path / "state", logs)
    stale_nonces["which"] = lambda n: True      # every nonce is stale
    with pytest.raises(client.Failure, match="badNonce") as e:
        acct.order("localhost", certs.new_domain_key(), "http-01", Publisher())
    assert e.value.retry_after is None          # the back-off applies
    assert len(stale_nonces["bad"]) == 2        # tried, retried once, given up
    # the same Account then succeeds (the scheduler's next attempt)
    stale_nonces["which"] = lambda n: False
    chain = acct.order("localhost", certs.new_domain_key(), "http-01", Publisher())
    assert certs.CertInfo(chain).covers("localhost")
