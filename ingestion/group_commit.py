"""Group commit: concurrent requests share one INSERT, and each is answered after it.

A request hands its validated events to the buffer and waits. The flusher takes everything waiting
(after at most ``flush_interval_s``, or at once when ``flush_max_events`` are waiting, or when no
INSERT is in flight and as many events wait as the last flush answered: the clients it answered are
back, so waiting longer only delays them), sends it as one INSERT and then resolves every request of
that flush: success only once the warehouse acknowledged the INSERT. While one INSERT runs, the next
group gathers, so batches grow with load. A failed INSERT fails every request in it (503: the client
retries, and transaction_id makes the retry harmless). Every request brings events already
validated, as the events table's columns, so a flush is one INSERT straight into ``events``: the
engine has nothing left to refuse. The buffer holds at most ``max_buffered_events``; beyond that
requests are refused at once, so memory stays bounded while the warehouse is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from ingestion.metrics import IngestMetrics
from ingestion.writer import EventColumns, EventWriter, RequestStamp, event_columns

log = logging.getLogger(__name__)


class WarehouseUnavailable(Exception):
    """The events were not committed; the client should retry later."""


class BufferFull(WarehouseUnavailable):
    pass


@dataclass
class PendingWrite:
    stamp: RequestStamp
    events: EventColumns
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def size(self) -> int:
        return len(self.events)


class GroupCommitBuffer:
    def __init__(
        self,
        writer: EventWriter,
        metrics: IngestMetrics,
        *,
        flush_interval_s: float,
        flush_max_events: int,
        max_buffered_events: int,
        max_inflight_flushes: int = 2,
    ) -> None:
        self.writer = writer
        self.metrics = metrics
        self.flush_interval_s = flush_interval_s
        self.flush_max_events = flush_max_events
        self.max_buffered_events = max_buffered_events
        self._pending: list[PendingWrite] = []
        self._buffered = 0  # waiting and in flight: what max_buffered_events bounds
        self._waiting = 0  # waiting for the next flush
        self._inflight_flushes = 0
        # Events the last completed flush answered: under steady load, as many come back.
        self._last_flush_events = 0
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Two INSERTs in flight: one gathers rows while the warehouse commits the other.
        self._inflight = asyncio.Semaphore(max_inflight_flushes)
        self._flushes: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        """Flush what is waiting, then stop; requests arriving afterwards are refused."""
        self._closing = True
        self._wakeup.set()
        self._full.set()
        if self._task is not None:
            await self._task
        await asyncio.gather(*self._flushes)

    async def write(self, stamp: RequestStamp, events: EventColumns) -> None:
        """Return once the events are committed; WarehouseUnavailable when they were not."""
        if self._closing:
            raise WarehouseUnavailable("shutting down")
        pending = PendingWrite(stamp, events)
        # An oversized request still gets in when the buffer is empty, so it can make progress.
        if self._buffered and self._buffered + pending.size > self.max_buffered_events:
            raise BufferFull(f"{self._buffered} events already waiting")
        self._pending.append(pending)
        self._buffered += pending.size
        self._waiting += pending.size
        self.metrics.buffered_events = self._buffered
        self._wakeup.set()
        if self._buffered >= self.flush_max_events or self._everyone_is_back():
            self._full.set()
        await pending.done

    def _everyone_is_back(self) -> bool:
        """Nothing in flight and as many events waiting as the last flush answered.

        Under steady load each flush answers every waiting client and they all send again:
        flushing once they are back saves the rest of the flush interval on every round trip,
        and the flush is as large as waiting the whole interval would have made it.
        """
        return self._inflight_flushes == 0 and 0 < self._last_flush_events <= self._waiting

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            if not self._closing and self._buffered < self.flush_max_events:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.flush_interval_s)
            await self._inflight.acquire()
            batch, self._pending = self._pending, []
            self._waiting = 0
            self._wakeup.clear()
            self._full.clear()
            if batch:
                self._inflight_flushes += 1
                flush = asyncio.create_task(self._flush(batch))
                self._flushes.add(flush)
                flush.add_done_callback(self._flushes.discard)
            else:
                self._inflight.release()
            if self._closing and not self._pending:
                return

    async def _flush(self, batch: list[PendingWrite]) -> None:
        events = sum(item.size for item in batch)
        started = time.perf_counter()
        try:
            await self._commit(batch)
        finally:
            self._inflight.release()
            self._inflight_flushes -= 1
            self._buffered -= events
            self.metrics.buffered_events = self._buffered
            self._last_flush_events = events
            if self._everyone_is_back():
                self._full.set()
        self.metrics.flush_events.observe(events)
        self.metrics.flush_seconds.observe(time.perf_counter() - started)

    async def _commit(self, group: list[PendingWrite]) -> None:
        try:
            await self._insert(group)
        except Exception as exc:
            log.warning("group commit of %d requests failed: %s", len(group), exc)
            self.metrics.flush_failures += 1
            if len(group) > 1 and refused_by_server(exc):
                # The server refused the data: maybe one request's rows. Commit the requests one
                # by one, so one bad request cannot hold back the others.
                for item in group:
                    await self._commit_alone(item)
            else:
                for item in group:
                    _settle(item, WarehouseUnavailable(str(exc)))
        else:
            for item in group:
                _settle(item, None)

    async def _insert(self, group: list[PendingWrite]) -> None:
        body = event_columns((item.stamp, item.events) for item in group)
        await asyncio.to_thread(self.writer.insert_events, body)

    async def _commit_alone(self, item: PendingWrite) -> None:
        try:
            await self._insert([item])
        except Exception as exc:
            # Still 503, never 422: a refusal may be transient (too many parts, memory).
            _settle(item, WarehouseUnavailable(str(exc)))
        else:
            _settle(item, None)


def refused_by_server(exc: Exception) -> bool:
    """The warehouse answered with an error (as opposed to not answering at all)."""
    return isinstance(exc, DatabaseError) and not isinstance(exc, OperationalError)


def _settle(item: PendingWrite, error: Exception | None) -> None:
    if item.done.done():  # the request went away (client disconnected)
        return
    if error is None:
        item.done.set_result(None)
    else:
        item.done.set_exception(error)
