"""The group-commit buffer against a warehouse that accepts connections and never answers."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from ingestion.group_commit import BufferFull, GroupCommitBuffer, WarehouseUnavailable
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
        buffer = GroupCommitBuffer(
            EventWriter(warehouse.settings()), IngestMetrics(), flush_interval_s=0.05,
            flush_max_events=100, max_buffered_events=100,
        )  # fmt: skip
        buffer.start()
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
        buffer = GroupCommitBuffer(
            EventWriter(warehouse.settings()), metrics, flush_interval_s=0.01,
            flush_max_events=100, max_buffered_events=100,
        )  # fmt: skip
        buffer.start()
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
