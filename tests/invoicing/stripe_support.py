"""Test support for the Stripe path: the localstripe harness process and a webhook catcher."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.support.processes import ServiceProcess, free_port

STRIPE_TEST_KEY = "sk_test_meterhouse"


@contextmanager
def localstripe(log_dir: Path) -> Iterator[str]:
    """Start the localstripe harness on 127.0.0.1 with fresh state; yield its base URL."""
    port = free_port()
    process = ServiceProcess(
        [sys.executable, "-m", "orchestration.stripe.local_stripe", "--port", str(port)],
        f"http://127.0.0.1:{port}/v1/customers",
        log_path=log_dir / "localstripe.log",
    )
    with process:
        yield f"http://127.0.0.1:{port}"


def register_webhook(base_url: str, url: str, secret: str) -> None:
    httpx.post(
        f"{base_url}/_config/webhooks/meterhouse", data={"url": url, "secret": secret}
    ).raise_for_status()


def fail_next_calls(base_url: str, count: int) -> None:
    httpx.post(f"{base_url}/_config/fail_next", params={"count": count}).raise_for_status()


@dataclass
class WebhookCatcher:
    """A plain HTTP endpoint that records the webhooks posted to it."""

    received: list[tuple[bytes, str | None]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give first; then 200
    url: str = ""

    def wait_for(self, predicate: str, timeout: float = 15.0) -> tuple[bytes, str | None]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body, signature in list(self.received):
                if predicate.encode() in body:
                    return body, signature
            time.sleep(0.05)
        raise TimeoutError(f"no webhook containing {predicate!r}: got {len(self.received)}")


@contextmanager
def webhook_catcher() -> Iterator[WebhookCatcher]:
    catcher = WebhookCatcher()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            catcher.received.append((body, self.headers.get("Stripe-Signature")))
            catcher.headers.append(dict(self.headers.items()))
            self.send_response(catcher.statuses.pop(0) if catcher.statuses else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    catcher.url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield catcher
    finally:
        server.shutdown()
        server.server_close()
