"""Headless Chromium driven over the DevTools protocol with the
``websockets`` client (no browser driver needed; Debian package
``chromium``, plugins/metrics/system-packages.txt)."""

import asyncio
import base64
import itertools
import json
import shutil
import signal
import subprocess
import time

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         "--window-size=1000,700"]


class Browser:
    """``with Browser(profile_dir) as b: b.run(coro_fn)``; stops Chromium
    (its process group, by pid) on exit."""

    def __init__(self, profile):
        self.profile = profile
        self.proc = subprocess.Popen([CHROMIUM] + FLAGS + ["--user-data-dir=%s" % profile,
                                                           "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def __enter__(self):
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or len(port_file.read_text().split()) < 2:
            assert time.monotonic() < deadline, "chromium did not start"
            assert self.proc.poll() is None, "chromium exited"
            time.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        self.ws_url = "ws://127.0.0.1:%s%s" % (port, path)
        return self

    def __exit__(self, *exc):
        try:
            import os
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(10)

    def run(self, fn):
        import websockets

        async def go():
            async with websockets.connect(self.ws_url, max_size=None,
                                          compression=None) as ws:
                return await fn(CDP(ws))
        return asyncio.run(asyncio.wait_for(go(), 60))


class CDP:
    """A minimal DevTools protocol client on one browser connection."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method, session=None, **params):
        mid = next(self.ids)
        msg = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        while True:
            r = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if r.get("id") == mid:
                if "error" in r:
                    raise RuntimeError("%s: %s" % (method, r["error"]))
                return r["result"]

    async def open(self, url):
        t = await self.call("Target.createTarget", url=url)
        a = await self.call("Target.attachToTarget", targetId=t["targetId"], flatten=True)
        return a["sessionId"]

    async def eval(self, session, expr):
        r = await self.call("Runtime.evaluate", session, expression=expr, returnByValue=True)
        return r["result"].get("value")

    async def wait(self, session, expr, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = await self.eval(session, expr)
            if v:
                return v
            await asyncio.sleep(0.1)
        raise AssertionError("timed out waiting for %s" % expr)

    async def screenshot(self, session, path):
        r = await self.call("Page.captureScreenshot", session, format="png")
        data = base64.b64decode(r["data"])
        path.write_bytes(data)
        return data
