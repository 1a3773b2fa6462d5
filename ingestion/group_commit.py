"""Group commit: concurrent requests share one INSERT, and each is answered after it.

A request hands its validated events to the buffer and waits. The flusher sends the waiting
events as one INSERT and then resolves every request of that flush: success only once the
warehouse acknowledged the INSERT. A group is flushed
- as soon as it holds ``flush_max_events`` (a flush takes whole requests up to that size and
  leaves the rest for the next one), even while an INSERT is in flight: with more producers
  than one flush holds, the next group parses while the warehouse commits the last one;
- otherwise only when no INSERT is in flight, and then at once when as many events wait as the
  last flush answered (its clients are back, so waiting longer only delays them), or once
  ``flush_interval_s`` has passed since the group began and since the last flush ended (its
  clients get that long to come back) and no request is still being received (a body being
  read will join this group; ``max_gather_s`` bounds that wait, so a slow sender cannot hold
  back the others).
While one INSERT runs, the next group gathers, so flushes grow with load. A failed INSERT fails
every request in it (503: the client retries, and transaction_id makes the retry harmless).
Every request brings events already validated, as the events table's columns, so a flush is one
INSERT straight into ``events``: the engine has nothing left to refuse. A batch's columns are
written as JSON when it arrives (``OWN_BLOCK_MIN_EVENTS``), a flush joins them. The buffer
holds at most ``max_buffered_events``; beyond that requests are refused at once, so memory
stays bounded while the warehouse is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from ingestion.metrics import IngestMetrics
from ingestion.writer import EventColumns, EventWriter, RequestStamp, event_columns

log = logging.getLogger(__name__)


class WarehouseUnavailable(Exception):
    """The events were not committed; the client should retry later."""


class BufferFull(WarehouseUnavailable):
    pass


# A request of at least this many events (a batch) is written as its own JSONColumns block as
# soon as it arrives, while its objects are still in the CPU's caches, and the flush joins the
# blocks (the engine reads several blocks of one INSERT into one part). Smaller requests
# (single events) keep their columns until the flush writes them as one block, as before, so
# a flush of single events stays one block for the engine to read.
OWN_BLOCK_MIN_EVENTS = 100


@dataclass
class PendingWrite:
    stamp: RequestStamp
    events: EventColumns | None  # None once written as ``block``
    size: int
    block: bytes = b""
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @classmethod
    def of(cls, stamp: RequestStamp, events: EventColumns) -> PendingWrite:
        size = len(events)
        if size >= OWN_BLOCK_MIN_EVENTS:
            return cls(stamp, None, size, event_columns([(stamp, events)]))
        return cls(stamp, events, size)


# A request still being received holds back a group past the flush interval by at most this
# much: long enough for the bodies of a round of large batches to be read and parsed, short
# enough that a client sending its body slowly delays the others little.
MAX_GATHER_S = 0.2


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
        max_gather_s: float = MAX_GATHER_S,
    ) -> None:
        self.writer = writer
        self.metrics = metrics
        self.flush_interval_s = flush_interval_s
        self.flush_max_events = flush_max_events
        self.max_buffered_events = max_buffered_events
        self.max_gather_s = max_gather_s
        self._pending: list[PendingWrite] = []
        self._buffered = 0  # waiting and in flight: what max_buffered_events bounds
        self._waiting = 0  # waiting for the next flush
        self._receiving = 0  # requests whose body is still being read
        self._inflight_flushes = 0
        # Events the last completed flush answered: under steady load, as many come back.
        self._last_flush_events = 0
        self._last_flush_ended = 0.0  # event loop time
        self._wakeup = asyncio.Event()  # something waits
        self._changed = asyncio.Event()  # a request arrived or a flush ended: check again
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Two INSERTs in flight: a full group need not wait for the previous INSERT.
        self.max_inflight_flushes = max_inflight_flushes
        self._flushes: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        """Flush what is waiting, then stop; requests arriving afterwards are refused."""
        self._closing = True
        self._wakeup.set()
        self._changed.set()
        if self._task is not None:
            await self._task
        await asyncio.gather(*self._flushes)

    @contextlib.contextmanager
    def receiving(self) -> Iterator[None]:
        """Around reading a request's body (the caller then validates it and calls ``write``
        without yielding to the event loop): a group past its flush interval waits for it."""
        self._receiving += 1
        try:
            yield
        finally:
            self._receiving -= 1
            self._changed.set()

    async def write(self, stamp: RequestStamp, events: EventColumns) -> None:
        """Return once the events are committed; WarehouseUnavailable when they were not."""
        if self._closing:
            raise WarehouseUnavailable("shutting down")
        # An oversized request still gets in when the buffer is empty, so it can make progress.
        if self._buffered and self._buffered + len(events) > self.max_buffered_events:
            raise BufferFull(f"{self._buffered} events already waiting")
        pending = PendingWrite.of(stamp, events)
        self._pending.append(pending)
        self._buffered += pending.size
        self._waiting += pending.size
        self.metrics.buffered_events = self._buffered
        self._wakeup.set()
        self._changed.set()
        if self._waiting >= self.flush_max_events and self._can_flush():
            # Full: its INSERT starts now rather than after the requests the event loop has
            # lined up (each a batch to parse), so the warehouse is not kept waiting.
            self._start_flush(self._take())
        await pending.done

    def _can_flush(self) -> bool:
        return self._inflight_flushes < self.max_inflight_flushes

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
            await self._gather()
            if self._pending and self._can_flush():
                self._start_flush(self._take())
            elif self._pending:  # full, but two INSERTs in flight: gather again once one ends
                self._changed.clear()
                await self._changed.wait()
            if self._closing and not self._pending:
                return

    async def _gather(self) -> None:
        """Wait until the waiting group is to be flushed (see the module's docstring)."""
        loop = asyncio.get_running_loop()
        began = free_since = loop.time()
        while self._pending and not self._closing and self._waiting < self.flush_max_events:
            self._changed.clear()
            if self._inflight_flushes:  # until it ends, or more requests arrive
                await self._changed.wait()
                free_since = loop.time()
                continue
            now = loop.time()
            if self._everyone_is_back():
                return
            # The clients of the last flush get the interval to come back, too.
            interval_ends = max(began, self._last_flush_ended) + self.flush_interval_s
            if now < interval_ends:
                timeout = interval_ends - now
            elif self._receiving and now - free_since < self.max_gather_s:
                timeout = free_since + self.max_gather_s - now
            else:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    def _take(self) -> list[PendingWrite]:
        """The oldest waiting requests, whole, up to ``flush_max_events`` (at least one)."""
        count = taken = 0
        for item in self._pending:
            if taken >= self.flush_max_events:
                break
            count += 1
            taken += item.size
        batch, self._pending = self._pending[:count], self._pending[count:]
        self._waiting -= taken
        if not self._pending:
            self._wakeup.clear()
        return batch

    def _start_flush(self, batch: list[PendingWrite]) -> None:
        """Start the INSERT of these requests (in a thread) and settle them when it ends."""
        started = time.perf_counter()
        insert = self._insert(batch)
        self._inflight_flushes += 1
        flush = asyncio.create_task(self._flush(batch, insert, started))
        self._flushes.add(flush)
        flush.add_done_callback(self._flushes.discard)

    async def _flush(
        self, batch: list[PendingWrite], insert: asyncio.Future[None], started: float
    ) -> None:
        events = sum(item.size for item in batch)
        try:
            await self._commit(batch, insert)
        finally:
            self._inflight_flushes -= 1
            self._buffered -= events
            self.metrics.buffered_events = self._buffered
            self._last_flush_events = events
            self._last_flush_ended = asyncio.get_running_loop().time()
            self._changed.set()
        self.metrics.flush_events.observe(events)
        self.metrics.flush_seconds.observe(time.perf_counter() - started)

    async def _commit(self, group: list[PendingWrite], insert: asyncio.Future[None]) -> None:
        try:
            await insert
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

    def _insert(self, group: list[PendingWrite]) -> asyncio.Future[None]:
        """The INSERT of these requests' events, started at once in a thread."""
        blocks = [item.block for item in group if item.events is None]
        small = [(item.stamp, item.events) for item in group if item.events is not None]
        if small:
            blocks.append(event_columns(small))
        body = b"".join(blocks)
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(None, self.writer.insert_events, body)

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
