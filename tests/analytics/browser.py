"""A headless Debian chromium driven over its DevTools protocol (no driver beyond a websocket).

Plain ``chromium --screenshot`` often catches a half-rendered Streamlit page, so pages are loaded
over CDP and the caller waits for what it needs (KPIs, charts) before taking the screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.support.processes import free_port
from tests.support.system_packages import ensure_command

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1100",
]  # fmt: skip


class Browser:
    def __init__(self, profile_dir: Path) -> None:
        self.profile_dir = profile_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.socket: ClientConnection | None = None
        self._closing = contextlib.ExitStack()
        self._ids = itertools.count(1)

    def __enter__(self) -> Browser:
        chromium = ensure_command("chromium", "chromium")
        self.process = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile_dir}",
             f"--remote-debugging-port={self.port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.socket = self._closing.enter_context(
            connect(self._page_socket_url(), max_size=64 * 1024 * 1024)
        )
        self.call("Page.enable")
        return self

    def __exit__(self, *exc: object) -> None:
        # Closed through DevTools, chromium removes the directory of its singleton socket under
        # /tmp; signalled, it leaves one behind for every browser started.
        with contextlib.suppress(Exception):  # a browser already gone
            assert self.socket is not None
            self.socket.send(json.dumps({"id": next(self._ids), "method": "Browser.close"}))
        self._closing.close()
        if self.process is None:
            return
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def _page_socket_url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                targets = httpx.get(f"http://127.0.0.1:{self.port}/json/list", timeout=1).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("chromium's DevTools endpoint did not answer")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.socket is not None
        call_id = next(self._ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:  # events arrive in between; skip them
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return
            time.sleep(0.25)
        text = self.evaluate("document.body ? document.body.innerText : ''")
        raise TimeoutError(f"page never satisfied {expression!r}; it shows:\n{text}")

    def text(self) -> str:
        return str(self.evaluate("document.body.innerText"))

    def metric_values(self) -> list[str]:
        """The values of the page's st.metric KPIs, as displayed."""
        values = self.evaluate(
            "[...document.querySelectorAll('[data-testid=\"stMetricValue\"]')]"
            ".map(e => e.innerText.trim())"
        )
        return [str(v) for v in values or []]

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))
