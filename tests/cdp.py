"""A minimal Chrome DevTools Protocol client: headless Chromium, one page, evaluate, screenshot.

Why not Playwright/Selenium: they download their own browsers (network at test time) and are
large; the report check needs only navigate, evaluate, console events and a screenshot, which
the DevTools protocol gives over one WebSocket. Used by tests/test_report_browser.py and
benchmarks/audit_screenshot.py.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

CHROMIUM = "/usr/bin/chromium"
SETUP = Path(__file__).resolve().parents[1] / "scripts" / "setup-chromium.sh"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm; Chromium crashes on it
    "--remote-debugging-port=0",  # the browser picks a free port and writes DevToolsActivePort
]
# Local only: never send the DevTools calls through an http_proxy from the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class CDPError(RuntimeError):
    """A DevTools call failed, or the browser did not start or answer in time."""


class Page:
    """One page target: commands by id, every other message kept in ``events`` in order."""

    def __init__(self, ws_url: str, timeout: float):
        self.timeout = timeout
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.events: list[dict] = []
        self._next = 0

    def _receive(self, deadline: float) -> dict:
        self.ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            return json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException as exc:
            raise CDPError("no answer from the browser in time") from exc

    def send(self, method: str, **params: Any) -> dict:
        """Run one command and return its result; events arriving meanwhile are kept."""
        self._next += 1
        call = self._next
        self.ws.send(json.dumps({"id": call, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == call:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str, since: int = 0) -> dict:
        """The first ``event`` at or after position ``since`` in ``events``, waiting for it."""
        deadline = time.monotonic() + self.timeout
        while True:
            for message in self.events[since:]:
                if message["method"] == event:
                    return message
            since = len(self.events)
            message = self._receive(deadline)
            if "method" in message:
                self.events.append(message)

    def open(self, url: str, width: int = 1200, height: int = 900) -> None:
        """Navigate (with Runtime, Log and Page events on) and wait until the load event."""
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        mark = len(self.events)
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise CDPError(f"navigate {url}: {result['errorText']}")
        self.wait_for("Page.loadEventFired", since=mark)

    def evaluate(self, expression: str) -> Any:
        """The expression's value (JSON-able), raising on a JavaScript exception."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise CDPError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Uncaught exceptions, console errors and browser log errors (CSP refusals among them)."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(f"console.error: {params.get('args')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} ({params['entry'].get('url')})")
        return found

    def screenshot(self, full_page: bool = True) -> bytes:
        """PNG of the viewport, or of the whole page at the current width."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
        return base64.b64decode(self.send("Page.captureScreenshot", **params)["data"])

    def close(self) -> None:
        self.ws.close()


class Chromium:
    """A headless Chromium with its own throw-away profile; ``close`` kills it and the profile."""

    def __init__(self, binary: str = CHROMIUM, timeout: float = 30.0):
        self.timeout = timeout
        self.profile = Path(tempfile.mkdtemp(prefix="deepiqa-chromium-"))
        self.log = self.profile / "chromium.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            self.port = self._port()
        except BaseException:
            self.close()
            raise

    def _port(self) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CDPError(f"chromium exited ({self.process.returncode}): {self.output()}")
            lines = marker.read_text().split() if marker.exists() else []
            if lines and lines[0].isdigit():
                return int(lines[0])
            time.sleep(0.05)
        raise CDPError(f"chromium did not open its DevTools port: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def _json(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with _LOCAL.open(request, timeout=self.timeout) as response:
            return json.loads(response.read())

    def page(self) -> Page:
        """A connection to a fresh page target."""
        target = self._json("/json/new?about:blank", method="PUT")
        return Page(target["webSocketDebuggerUrl"], self.timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def ensure_chromium() -> tuple[bool, str]:
    """Run scripts/setup-chromium.sh (installs Debian's chromium once); (ok, its output)."""
    done = subprocess.run(
        ["bash", str(SETUP)], capture_output=True, text=True, timeout=900, check=False
    )
    return done.returncode == 0 and Path(CHROMIUM).exists(), done.stdout + done.stderr
