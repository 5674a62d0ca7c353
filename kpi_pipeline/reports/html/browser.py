"""Open a report in headless Chromium over the DevTools protocol: what the tests and the bench
see of it — console errors, every request the page makes, the DOM, a screenshot, timings.

Chromium (Debian's `chromium`) listens on a loopback port it picks itself and writes to
`DevToolsActivePort` in its profile folder; we speak the protocol over one WebSocket
(`websockets`' synchronous client, a dev dependency), attached to a single page target.
No Selenium or Playwright: no driver binary to match to the browser, no browser download.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("KPI_CHROMIUM", "/usr/bin/chromium")
_START_TIMEOUT_S = 30.0
_COMMAND_TIMEOUT_S = 60.0


class BrowserError(RuntimeError):
    """Chromium did not start, or did not answer in time."""


@dataclass
class PageVisit:
    """What happened while a page loaded."""

    url: str
    load_seconds: float  # navigation sent → load event
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    blocked: list[str] = field(default_factory=list)  # of those, refused before leaving (CSP)
    console_errors: list[str] = field(default_factory=list)  # errors, warnings, exceptions

    @property
    def outside_requests(self) -> list[str]:
        """Requests for anything but the page itself."""
        return [u for u in self.requests if u != self.url]


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


class Chromium:
    """A headless Chromium with one tab: `with Chromium() as browser: browser.visit(path)`."""

    def __init__(self, width: int = 1200, height: int = 900, binary: str | None = None):
        self.width, self.height = width, height
        self.binary = binary or chromium_path()
        self._profile: tempfile.TemporaryDirectory | None = None
        self._process: subprocess.Popen | None = None
        self._socket = None
        self._session: str | None = None
        self._next_id = 0
        self._events: list[dict] = []

    def __enter__(self) -> Chromium:
        from websockets.sync.client import connect

        if self.binary is None:
            raise BrowserError(f"no Chromium at {CHROMIUM} nor on PATH (apt-get install chromium)")
        # Chromium's helper processes may still write to the profile as it is removed.
        self._profile = tempfile.TemporaryDirectory(
            prefix="kpi-chromium-", ignore_cleanup_errors=True
        )
        profile = Path(self._profile.name)
        self._process = subprocess.Popen(
            [
                self.binary,
                "--headless",
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise BrowserError(f"Chromium ({self.binary}) did not open its DevTools port")
            time.sleep(0.05)
        port, browser_path = port_file.read_text().split()[:2]
        self._socket = connect(f"ws://127.0.0.1:{port}{browser_path}", max_size=None)
        target = self._send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self._send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, False
        )
        self._session = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self._send(f"{domain}.enable")
        self._send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        return self

    def __exit__(self, *exc_info) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

    def visit(self, path: Path) -> PageVisit:
        """Load a local file and wait for its load event; report requests and console errors."""
        url = Path(path).resolve().as_uri()
        self._events.clear()
        started = time.perf_counter()
        self._send("Page.navigate", {"url": url})
        self._wait_for("Page.loadEventFired")
        visit = PageVisit(url=url, load_seconds=time.perf_counter() - started)
        # Let late events (a lazily requested font, a CSP console message) arrive: on a busy
        # machine they can come well after the load event.
        self._settle()
        urls: dict[str, str] = {}
        for event in self._events:
            method, params = event["method"], event.get("params", {})
            if method == "Network.requestWillBeSent":
                urls[params["requestId"]] = params["request"]["url"]
                visit.requests.append(params["request"]["url"])
            elif method == "Network.loadingFailed" and params.get("blockedReason"):
                visit.blocked.append(urls.get(params["requestId"], "?"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "warning",
                "assert",
            ):
                visit.console_errors.append(
                    " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
                )
            elif method == "Runtime.exceptionThrown":
                visit.console_errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                visit.console_errors.append(params["entry"]["text"])
        return visit

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools runs it: the page's
        Content-Security-Policy does not apply)."""
        result = self._send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self._send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
            params["captureBeyondViewport"] = True
        data = self._send("Page.captureScreenshot", params)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def _send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        self._socket.send(json.dumps(message))
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _wait_for(self, method: str) -> dict:
        while True:
            seen = [e for e in self._events if e.get("method") == method]
            if seen:
                return seen[-1]
            self._receive()

    def _settle(self, quiet_s: float = 0.5, at_most_s: float = 5.0) -> None:
        """Read events until none arrives for `quiet_s` (or `at_most_s` have passed)."""
        deadline = time.monotonic() + at_most_s
        while time.monotonic() < deadline:
            try:
                message = json.loads(self._socket.recv(timeout=quiet_s))
            except TimeoutError:
                return
            if "method" in message:
                self._events.append(message)

    def _receive(self) -> dict:
        try:
            message = json.loads(self._socket.recv(timeout=_COMMAND_TIMEOUT_S))
        except TimeoutError as exc:
            raise BrowserError(f"Chromium sent nothing for {_COMMAND_TIMEOUT_S:.0f} s") from exc
        if "method" in message:
            self._events.append(message)
        return message
