"""Fixtures: the SMTP sink process and korectl running tests/smtpda/apps/mailapp.py."""

import json
import os
import re
import shutil
import urllib.request

import pytest

from kore_testing import KoreServer, wait_for
from smtpda_helpers import SinkProc, make_certs

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")

FAST = {"KORE_SMTPDA_POLL_INTERVAL": "0.2", "KORE_SMTPDA_TIMEOUT": "20"}


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture(scope="session")
def wrong_name_certs(tmp_path_factory):
    """A certificate for mail.example.net only (its own CA)."""
    return make_certs(str(tmp_path_factory.mktemp("wrong-certs")),
                      dns=("mail.example.net",), ips=())


@pytest.fixture
def sinks(tmp_path):
    started = []

    def start(**kw):
        s = SinkProc(tmp_path / ("sink%d" % len(started)), **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


class MailServer:
    """korectl running mailapp.py, with helpers to send and inspect."""

    def __init__(self, srv, spool):
        self.srv = srv
        self.spool = spool

    def send(self, **spec):
        spec.setdefault("to", ["rcpt@example.com"])
        req = urllib.request.Request(self.srv.url + "/send", data=json.dumps(spec).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
            return json.loads(r.read())

    def agent_pids(self):
        return [int(p) for p in re.findall(r"smtpda agent started \(pid (\d+)\)",
                                           self.srv.log())]

    def wait_agent(self, count=1, timeout=20.0):
        """Wait for the count-th agent to be ready; return its pid."""
        ok = wait_for(lambda: len(re.findall(r"smtpda agent \d+ delivering",
                                             self.srv.log())) >= count, timeout)
        assert ok, self.srv.log()
        return self.agent_pids()[count - 1]


@pytest.fixture
def mail_server(tmp_path):
    started = []

    def start(smtp=None, env=None, spool=None, app="mailapp.py", wait_agent=True, **kw):
        app_path = tmp_path / app
        if not app_path.exists():
            shutil.copy(os.path.join(APPS, app), app_path)
        e = dict(FAST)
        if smtp:
            e["SMTP"] = smtp
        spool = spool or str(tmp_path / "spool")
        e["KORE_SMTPDA_SPOOL"] = spool
        e.update(env or {})
        srv = KoreServer(tmp_path, str(app_path), env=e, **kw)
        started.append(srv)
        ms = MailServer(srv, spool)
        if wait_agent:
            ms.wait_agent(len(ms.agent_pids()) or 1)
        return ms

    yield start
    for srv in started:
        srv.cleanup()
