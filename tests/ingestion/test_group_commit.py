"""The group-commit buffer against a warehouse that accepts connections and never answers."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from ingestion.group_commit import (
    OWN_BLOCK_MIN_EVENTS,
    BufferFull,
    GroupCommitBuffer,
    WarehouseUnavailable,
)
from ingestion.metrics import IngestMetrics
from ingestion.validation import ValidEvent
from ingestion.writer import EventColumns, EventWriter, RequestStamp
from tests.conftest import Warehouse
from warehouse.settings import Settings


@pytest.fixture
def silent_warehouse() -> Iterator[str]:
    """A listening socket that never accepts: connections hang like an overloaded server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def events(count: int) -> EventColumns:
    return EventColumns.of(
        ValidEvent(b"{}", f"t{i}", "sub", None, "c", 1_700_000_000_000, {}, None)
        for i in range(count)
    )


def stamp() -> RequestStamp:
    now_us = time.time_ns() // 1000
    return RequestStamp(uuid.uuid4(), uuid.uuid4(), now_us, now_us // 1000, 1024)


def started_buffer(
    warehouse: Warehouse, metrics: IngestMetrics, interval_s: float, max_events: int, **limits: Any
) -> GroupCommitBuffer:
    """A started buffer writing to the test warehouse, with room for 100 events unless told."""
    limits.setdefault("max_buffered_events", 100)
    buffer = GroupCommitBuffer(
        EventWriter(warehouse.settings()), metrics, flush_interval_s=interval_s,
        flush_max_events=max_events, **limits,
    )  # fmt: skip
    buffer.start()
    return buffer


def test_full_buffer_refuses_at_once_and_waiting_requests_fail_without_ack(
    silent_warehouse: str,
) -> None:
    settings = Settings(warehouse_url=silent_warehouse, ingest_insert_timeout_s=2.0)

    async def scenario() -> None:
        metrics = IngestMetrics()
        buffer = GroupCommitBuffer(
            EventWriter(settings), metrics, flush_interval_s=0.001, flush_max_events=100,
            max_buffered_events=10,
        )  # fmt: skip
        buffer.start()
        waiting = asyncio.create_task(buffer.write(stamp(), events(10)))
        await asyncio.sleep(0.2)
        assert metrics.buffered_events == 10
        started = time.monotonic()
        with pytest.raises(BufferFull):
            await buffer.write(stamp(), events(1))
        assert time.monotonic() - started < 0.1  # refused at once, memory stays bounded
        with pytest.raises(WarehouseUnavailable):
            await waiting  # never acknowledged: the client gets 503 and retries
        assert metrics.buffered_events == 0
        assert metrics.flush_failures == 1
        await buffer.stop()

    asyncio.run(scenario())


def test_a_refused_request_does_not_hold_back_the_others(warehouse: Warehouse) -> None:
    # Bypassing validation, one request carries a row the warehouse refuses to parse.
    good, bad = events(3), events(1)
    bad.precise_total_amount_cents[0] = "not-a-decimal"
    good_stamp, bad_stamp = stamp(), stamp()

    async def scenario() -> tuple[BaseException | None, BaseException | None]:
        buffer = started_buffer(warehouse, IngestMetrics(), 0.05, 100)
        outcomes = await asyncio.gather(
            buffer.write(good_stamp, good), buffer.write(bad_stamp, bad), return_exceptions=True
        )
        await buffer.stop()
        return outcomes[0], outcomes[1]

    good_outcome, bad_outcome = asyncio.run(scenario())
    assert good_outcome is None
    assert isinstance(bad_outcome, WarehouseUnavailable)
    stored = warehouse.client().command(
        "SELECT count() FROM events WHERE organization_id = {org:UUID}",
        parameters={"org": good_stamp.organization_id},
    )
    assert stored == 3


def test_a_flush_starts_once_the_clients_of_the_last_one_are_back(warehouse: Warehouse) -> None:
    """Without waiting for the flush interval when nothing else can be coming."""

    async def scenario() -> None:
        metrics = IngestMetrics()
        buffer = started_buffer(warehouse, metrics, 0.01, 100)
        await buffer.write(stamp(), events(2))  # flushed after the interval
        buffer.flush_interval_s = 60.0
        # One event of the two the last flush answered: the interval applies.
        first = asyncio.create_task(buffer.write(stamp(), events(1)))
        done, _ = await asyncio.wait({first}, timeout=0.3)
        assert not done
        # Both back: flushed at once, long before the 60 s interval.
        await asyncio.wait_for(asyncio.gather(first, buffer.write(stamp(), events(1))), 20)
        assert sum(metrics.flush_events.counts) == 2
        await buffer.stop()

    asyncio.run(scenario())


class RecordingWriter(EventWriter):
    """Notes when each INSERT starts and ends, by its number of events; ``slow_s`` more for
    the first INSERT, as a warehouse that is slow for a while."""

    def __init__(self, settings: Settings, slow_s: float = 0.0) -> None:
        super().__init__(settings)
        self.log: list[tuple[str, int]] = []
        self.times: dict[tuple[str, int], float] = {}
        self.slow_s = slow_s

    def insert_events(self, columns: bytes) -> None:
        events = len(orjson.loads(columns)["transaction_id"])
        self.note("start", events)
        try:
            time.sleep(self.slow_s)
            self.slow_s = 0.0
            super().insert_events(columns)
        finally:
            self.note("end", events)

    def note(self, what: str, events: int) -> None:
        self.log.append((what, events))
        self.times[what, events] = time.monotonic()


def test_a_full_group_does_not_wait_for_the_insert_in_flight(silent_warehouse: str) -> None:
    """With more producers than one flush holds, the next group's INSERT overlaps the last one;
    a group below the size waits for the INSERT in flight instead of going out small."""
    writer = RecordingWriter(Settings(warehouse_url=silent_warehouse, ingest_insert_timeout_s=1))

    async def scenario() -> None:
        buffer = GroupCommitBuffer(
            writer, IngestMetrics(), flush_interval_s=0.001, flush_max_events=4,
            max_buffered_events=100,
        )  # fmt: skip

        async def request(count: int) -> None:
            with pytest.raises(WarehouseUnavailable):  # the silent warehouse times out
                await buffer.write(stamp(), events(count))

        buffer.start()
        first = asyncio.create_task(request(1))  # flushed after the interval
        await asyncio.sleep(0.2)
        full = asyncio.create_task(request(4))  # flush_max_events: its own INSERT at once
        await asyncio.sleep(0)
        small = asyncio.create_task(request(2))
        await asyncio.gather(first, full, small)
        await buffer.stop()

    asyncio.run(scenario())
    log = writer.log
    assert log.index(("start", 4)) < log.index(("end", 1))  # two INSERTs in flight
    assert log.index(("end", 4)) < log.index(("start", 2))  # the small group waited
    assert len(log) == 6


def test_a_flush_takes_whole_requests_up_to_its_size(warehouse: Warehouse) -> None:
    good_stamps = [stamp() for _ in range(3)]

    async def scenario() -> IngestMetrics:
        metrics = IngestMetrics()
        buffer = started_buffer(warehouse, metrics, 0.001, 3)
        # The second request fills the group (4 events >= 3): both go; the third goes next.
        await asyncio.gather(*(buffer.write(s, events(2)) for s in good_stamps))
        await buffer.stop()
        return metrics

    metrics = asyncio.run(scenario())
    assert sum(metrics.flush_events.counts) == 2
    assert metrics.flush_events.total == 6
    stored = warehouse.client().command(
        "SELECT count() FROM events WHERE organization_id IN {orgs:Array(UUID)}",
        parameters={"orgs": [s.organization_id for s in good_stamps]},
    )
    assert stored == 6


def test_a_request_still_being_received_joins_the_group(warehouse: Warehouse) -> None:
    """Past the flush interval, a group waits for bodies still being read (they join it), for
    at most max_gather_s."""

    async def scenario() -> IngestMetrics:
        metrics = IngestMetrics()
        buffer = started_buffer(warehouse, metrics, 0.001, 100, max_gather_s=60.0)
        with buffer.receiving():
            first = asyncio.create_task(buffer.write(stamp(), events(1)))
            done, _ = await asyncio.wait({first}, timeout=0.3)
            assert not done  # held back by the request being received
            # Its body is in: it joins the group, which then goes at once.
            second = asyncio.create_task(buffer.write(stamp(), events(1)))
            await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(first, second), 20)
        assert (sum(metrics.flush_events.counts), metrics.flush_events.total) == (1, 2)
        # A body that never finishes holds the next group back for max_gather_s only.
        buffer.max_gather_s = 0.2
        with buffer.receiving():
            await asyncio.wait_for(buffer.write(stamp(), events(1)), 20)
        await buffer.stop()
        return metrics

    metrics = asyncio.run(scenario())
    assert (sum(metrics.flush_events.counts), metrics.flush_events.total) == (2, 3)


def test_the_clients_of_the_last_flush_get_the_interval_to_come_back(
    warehouse: Warehouse,
) -> None:
    """A request that waited for a slow INSERT is not flushed alone the moment it ends: the
    other clients of that flush get the flush interval to come back and join it."""
    writer = RecordingWriter(warehouse.settings(), slow_s=0.6)
    interval_s = 0.3

    async def scenario() -> None:
        buffer = GroupCommitBuffer(
            writer, IngestMetrics(), flush_interval_s=interval_s, flush_max_events=100,
            max_buffered_events=100,
        )  # fmt: skip
        buffer.start()
        slow = asyncio.create_task(buffer.write(stamp(), events(2)))  # flushed after 0.3 s
        await asyncio.sleep(interval_s + 0.1)
        await asyncio.gather(slow, buffer.write(stamp(), events(1)))  # waits for the INSERT
        await buffer.stop()

    asyncio.run(scenario())
    assert writer.log == [("start", 2), ("end", 2), ("start", 1), ("end", 1)]
    # Its group began long before, but it still waited the interval after the flush ended.
    assert writer.times["start", 1] - writer.times["end", 2] > 0.6 * interval_s


def test_batches_written_on_arrival_join_the_flush_of_smaller_requests(
    warehouse: Warehouse,
) -> None:
    """A request of OWN_BLOCK_MIN_EVENTS events or more is written as its own block when it
    arrives; one INSERT carries it with the block of the smaller requests, each row under its
    own request's organization and time of receipt."""
    sizes = [OWN_BLOCK_MIN_EVENTS, 1, OWN_BLOCK_MIN_EVENTS + 1, 2]
    requests = [(stamp(), events(size)) for size in sizes]

    async def scenario() -> IngestMetrics:
        metrics = IngestMetrics()
        buffer = started_buffer(warehouse, metrics, 0.05, 10_000, max_buffered_events=10_000)
        await asyncio.gather(*(buffer.write(s, e) for s, e in requests))
        await buffer.stop()
        return metrics

    metrics = asyncio.run(scenario())
    assert sum(metrics.flush_events.counts) == 1  # one INSERT for the four requests
    stored = (
        warehouse.client()
        .query(
            "SELECT organization_id, toUnixTimestamp64Micro(ingested_at), count() FROM events "
            "WHERE organization_id IN {orgs:Array(UUID)} GROUP BY 1, 2",
            parameters={"orgs": [s.organization_id for s, _ in requests]},
        )
        .result_rows
    )
    assert sorted(stored) == sorted(
        (s.organization_id, s.ingested_at_us, size)
        for (s, _), size in zip(requests, sizes, strict=True)
    )
