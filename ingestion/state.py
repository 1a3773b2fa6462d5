"""What an ingest process holds while it runs: settings, writer, group-commit buffer, metrics.

Any FastAPI app can serve the ingest routes: include ``ingestion.routes.router`` and run
``ingest_state`` in the app's lifespan, storing the state on ``app.state.ingest``::

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with ingest_state(get_settings()) as state:
            app.state.ingest = state
            yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(ingestion.routes.router)

``ingestion.main.create_app`` does this for the standalone ingest service, plus
``ingestion.routes.health_router`` for its ``/health``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import repeat

from ingestion.group_commit import GroupCommitBuffer
from ingestion.metrics import IngestMetrics
from ingestion.validation import Limits
from ingestion.writer import EventWriter, RequestStamp
from meterhouse.orgs import api_key_cache
from warehouse.settings import Settings

RECENT_KEYS_CAPACITY = 200_000
BULK_CONCURRENCY = 2  # each bulk request may hold up to ingest_bulk_max_bytes in flight


class RecentKeys:
    """Bounded memory of recently accepted (organization, subscription, transaction) keys.

    Only feeds the duplicates metric: the table dedups whatever this process remembers. Keys
    are kept in two generations of ``capacity / 2``: when the current one fills up it becomes
    the previous one and the oldest is dropped, so a request's keys are checked and added with
    a few set operations instead of one dictionary update per key.
    """

    def __init__(self, capacity: int = RECENT_KEYS_CAPACITY) -> None:
        self.generation_size = max(capacity // 2, 1)
        self._current: set[int] = set()
        self._previous: set[int] = set()

    @staticmethod
    def keys(
        organization_id: uuid.UUID, subscriptions: list[str], transaction_ids: list[str]
    ) -> list[int]:
        """The keys of these events, for ``count_seen_keys``: taken as soon as a request is
        read, while its strings are still in the CPU's caches, and checked once it commits."""
        organization = organization_id.int  # hashing a UUID runs Python code: once per call
        return list(map(hash, zip(repeat(organization), subscriptions, transaction_ids)))

    def count_seen(
        self, organization_id: uuid.UUID, subscriptions: list[str], transaction_ids: list[str]
    ) -> int:
        """How many of these keys were seen before, earlier in this process or earlier among
        these; remembers them all."""
        return self.count_seen_keys(self.keys(organization_id, subscriptions, transaction_ids))

    def count_seen_keys(self, digests: list[int]) -> int:
        """``count_seen`` of keys already taken (``keys``)."""
        distinct = set(digests)
        new = distinct - self._current
        new -= self._previous
        self._current |= new
        if len(self._current) >= self.generation_size:
            self._previous, self._current = self._current, set()
        return len(digests) - len(new)


@dataclass
class IngestState:
    settings: Settings
    writer: EventWriter
    buffer: GroupCommitBuffer
    metrics: IngestMetrics
    limits: Limits
    bulk_slots: asyncio.Semaphore
    recent_keys: RecentKeys = field(default_factory=RecentKeys)
    _last_us: int = 0
    _sequence: itertools.count[int] = field(default_factory=itertools.count)

    def stamp(self, organization_id: uuid.UUID) -> RequestStamp:
        """A request's identity; ingested_at strictly increases within this process."""
        now_us = max(time.time_ns() // 1000, self._last_us + 1)
        self._last_us = now_us
        return RequestStamp(
            organization_id=organization_id,
            request_id=uuid.uuid4(),
            ingested_at_us=now_us,
            max_timestamp_ms=now_us // 1000 + self.limits.max_future_s * 1000,
            max_event_bytes=self.limits.max_event_bytes,
        )


@asynccontextmanager
async def ingest_state(settings: Settings) -> AsyncIterator[IngestState]:
    api_key_cache.ttl_s = settings.api_key_cache_ttl_s
    metrics = IngestMetrics()
    writer = EventWriter(settings)
    buffer = GroupCommitBuffer(
        writer,
        metrics,
        flush_interval_s=settings.ingest_flush_interval_ms / 1000,
        flush_max_events=settings.ingest_flush_max_events,
        max_buffered_events=settings.ingest_buffer_max_events,
        max_inflight_flushes=settings.ingest_flush_concurrency,
    )
    buffer.start()
    state = IngestState(
        settings=settings,
        writer=writer,
        buffer=buffer,
        metrics=metrics,
        limits=Limits(
            max_future_s=settings.ingest_max_future_s,
            max_event_bytes=settings.ingest_event_max_bytes,
        ),
        bulk_slots=asyncio.Semaphore(BULK_CONCURRENCY),
    )
    try:
        yield state
    finally:
        await buffer.stop()
        writer.close()
