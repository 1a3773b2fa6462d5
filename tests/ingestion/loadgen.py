"""A load generator that remembers every event the ingest API acknowledged with a 2xx."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx


@dataclass
class LoadResult:
    acknowledged: set[str] = field(default_factory=set)
    unavailable: int = 0  # 503 answers (each carried Retry-After)
    connection_errors: int = 0
    other: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class LoadGenerator:
    """Threads posting Lago batches with fresh transaction ids until stopped.

    Batches alternate between small ones and large ones (500 events), so flushes mix requests
    of both sizes under the load.

    With ``retry`` each batch is re-sent (same transaction ids) until acknowledged, as a real
    producer does; without it a failed batch is dropped and never counted.
    """

    def __init__(
        self, url: str, api_key: str, subscription: str, *, threads: int = 8,
        batch_sizes: tuple[int, ...] = (5, 500), retry: bool = False,
    ) -> None:  # fmt: skip
        self.url = url
        self.api_key = api_key
        self.subscription = subscription
        self.threads = threads
        self.batch_sizes = batch_sizes
        self.retry = retry
        self.result = LoadResult()
        self._stop = threading.Event()
        self._ids = itertools.count()
        self._workers: list[threading.Thread] = []

    def start(self) -> LoadGenerator:
        for n in range(self.threads):
            sizes = itertools.islice(itertools.cycle(self.batch_sizes), n, None)
            worker = threading.Thread(
                target=self._run, args=(sizes,), name=f"load-{n}", daemon=True
            )
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)
        return self.result

    def _batch(self, size: int) -> list[dict[str, object]]:
        # A producer stamps an event once; its retries carry the same timestamp.
        now = round(time.time(), 3)
        return [
            {"transaction_id": f"load-{next(self._ids)}", "external_subscription_id":
             self.subscription, "code": "load", "timestamp": now, "properties": {"n": 1}}
            for _ in range(size)
        ]  # fmt: skip

    def _run(self, sizes: Iterator[int]) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10.0) as http:
            while not self._stop.is_set():
                batch = self._batch(next(sizes))
                while not self._send(http, batch) and self.retry and not self._stop.is_set():
                    time.sleep(0.05)

    def _send(self, http: httpx.Client, batch: list[dict[str, object]]) -> bool:
        try:
            response = http.post("/api/v1/events/batch", json={"events": batch})
        except httpx.HTTPError:
            with self.result.lock:
                self.result.connection_errors += 1
            time.sleep(0.05)
            return False
        with self.result.lock:
            if response.status_code == 200:
                self.result.acknowledged.update(str(e["transaction_id"]) for e in batch)
                return True
            if response.status_code == 503 and "retry-after" in response.headers:
                self.result.unavailable += 1
            else:
                self.result.other.append(response.status_code)
        return False
