"""In-process unit tests: samples, the master's folding, the text format,
Skitai's log_off matching, /proc sampling, the critical point's checks."""

import os

import pytest

from kore_http.accesslog import LogOff
from kore_metrics import exposition, procstat, recycle
from kore_metrics.store import DURATION_BUCKETS, Aggregate, Samples
from metrics_util import parse, promtool_check, total


def _worker(n_ok, n_err, live_gauge):
    s = Samples()
    s.family("kore_req_total", "counter", "requests")
    s.family("kore_open", "gauge", "open")
    s.family("kore_dur_seconds", "histogram", "duration", DURATION_BUCKETS)
    for _ in range(n_ok):
        s.inc("kore_req_total", (("code", "200"),))
        s.observe("kore_dur_seconds", (("code", "200"),), 0.004)
    for _ in range(n_err):
        s.inc("kore_req_total", (("code", "500"),))
        s.observe("kore_dur_seconds", (("code", "500"),), 20.0)
    s.set("kore_open", (), live_gauge)
    return s


def test_aggregate_sums_workers_and_keeps_dead_counters():
    agg = Aggregate()
    agg.update(10, _worker(3, 1, 5).dump())
    agg.update(11, _worker(2, 0, 7).dump())
    # a repeated snapshot (cumulative values) changes nothing
    agg.update(11, _worker(2, 0, 7).dump())
    t = agg.total()
    assert t[("kore_req_total", (("code", "200"),))] == 5
    assert t[("kore_open", ())] == 12
    agg.forget(10)
    t = agg.total()
    assert t[("kore_req_total", (("code", "200"),))] == 5    # counters kept
    assert t[("kore_req_total", (("code", "500"),))] == 1
    assert t[("kore_open", ())] == 7                         # gauge dropped
    h = t[("kore_dur_seconds", (("code", "500"),))]
    assert h[-1] == 1 and h[-2] == 20.0 and sum(h[:len(DURATION_BUCKETS)]) == 0  # +Inf only


def test_exposition_is_valid_and_cumulative():
    agg = Aggregate()
    agg.update(1, _worker(3, 2, 1).dump())
    text = exposition.render(agg.families, agg.total())
    promtool_check(text)
    assert total(text, "kore_dur_seconds_bucket", code="200", le="0.005") == 3
    assert total(text, "kore_dur_seconds_bucket", code="200", le="+Inf") == 3
    assert total(text, "kore_dur_seconds_bucket", code="500", le="10.0") == 0
    assert total(text, "kore_dur_seconds_count", code="500") == 2
    les = [l["le"] for n, l, v in parse(text) if n == "kore_dur_seconds_bucket"
           and l["code"] == "200"]
    assert les == [repr(float(b)) for b in DURATION_BUCKETS] + ["+Inf"]


def test_label_values_are_escaped():
    s = Samples()
    s.family("kore_x_total", "counter", 'help with \\ and\nnewline')
    s.inc("kore_x_total", (("route", 'a"b\\c\nd'),))
    agg = Aggregate()
    agg.update(1, s.dump())
    text = exposition.render(agg.families, agg.total())
    promtool_check(text)
    assert 'route="a\\"b\\\\c\\nd"' in text


def test_family_kind_checked():
    with pytest.raises(ValueError, match="kind must be one of"):
        Samples().family("kore_y", "summary", "no")


def test_log_off_skitai_rules():
    off = LogOff()
    off.add("/static/", "*.css", "/favicon.ico", "/img/*")
    assert off("/static/app.js") and off("/x/site.css") and off("/favicon.ico")
    assert off("/img/a.png")
    assert not off("/") and not off("/api") and not off("/favicon.ico2")
    with pytest.raises(ValueError):
        off.add("")


def test_procstat_reads_this_process():
    cpu, rss = procstat.read(os.getpid())
    assert cpu > 0 and rss > 1024 * 1024
    s = procstat.Sampler()
    assert s.sample(os.getpid())[0] is None
    x = 0
    for i in range(200000):
        x += i
    pct, _ = s.sample(os.getpid())
    assert pct is not None and pct >= 0
    assert procstat.read(2 ** 22 + 12345) is None


def test_critical_point_checks_arguments():
    recycle.set_worker_critical_point(cpu_percent=80, continuous=2, interval=5)
    assert recycle.CRITICAL.cpu_percent == 80.0 and recycle.CRITICAL.continuous == 2
    with pytest.raises(ValueError, match="continuous"):
        recycle.set_worker_critical_point(continuous=0)
    with pytest.raises(ValueError, match="numbers"):
        recycle.set_worker_critical_point(cpu_percent="lots")
    recycle.reset()
    assert recycle.CRITICAL is None


class _Req:
    def __init__(self):
        self.headers = {}

    def response_header(self, name, value):
        self.headers[name] = value

    def response(self, status, body):
        self.status, self.body = status, body


def test_readyz_warns_for_what_is_degraded_and_fails_first(monkeypatch):
    import json
    from kore_metrics import health
    why, warn = [], []
    monkeypatch.setattr(health, "reasons", lambda: list(why))
    monkeypatch.setattr(health, "degraded", lambda: list(warn))

    def answer():
        req = _Req()
        health.readyz(req)
        assert req.headers["content-type"] == "application/health+json"
        return req.status, json.loads(req.body)
    assert answer() == (200, {"status": "pass"})
    warn[:] = ["backplane redis degraded: reader: gone", "other: slow"]
    assert answer() == (200, {"status": "warn", "output":
                              "backplane redis degraded: reader: gone; other: slow"})
    why[:] = ["draining"]           # not ready wins over degraded
    assert answer() == (503, {"status": "fail", "output": "draining"})


def test_a_scrape_waits_for_the_answer_to_its_own_pull(monkeypatch):
    """A periodic snapshot the worker sent before it read the scrape's
    request is not taken for the answer: the scrape counts every request
    answered before it began."""
    import gevent
    from kore import ipc
    from kore_metrics import master as M
    from kore_metrics.worker import MSG_PULL, MSG_SNAPSHOT

    class WP:
        id, ready, pid = 1, True, 4242

    class Arb:
        procs = {4242: WP()}
        slots = {1: WP()}
        num_workers = 1
        stopping = False
        reloading = None

        def __init__(self):
            self.sent = []

        def route(self, msg):
            if msg.kind != MSG_PULL:
                return
            self.sent.append(msg)
            # already on its way: the periodic snapshot of 400 requests,
            # then (later) the answer to this pull with all 500
            gevent.spawn_later(0.01, m.message, ipc.Message(
                MSG_SNAPSHOT, b"4242 0\n" + _worker(400, 0, 0).dump().encode(), 1))
            gevent.spawn_later(0.2, m.message, ipc.Message(
                MSG_SNAPSHOT, b"4242 " + msg.payload + b"\n"
                + _worker(500, 0, 0).dump().encode(), 1))

    monkeypatch.setattr(M.runtime, "notify", lambda *a, **k: [])
    arb = Arb()
    m = M.Master(arb)
    m.check()
    m.refresh()
    assert arb.sent[0].payload == b"1"
    assert m.agg.total()[("kore_req_total", (("code", "200"),))] == 500
    m.refresh()                                         # the next pull is number 2
    assert arb.sent[1].payload == b"2"
    gevent.sleep(0.3)
