"""Property tests: the Python validators and the engine's rules (migration 0102) agree.

Hypothesis builds events from valid, borderline and wrong values; each goes through the real
write paths (events_input; the group commit's columns of validated events; Lago batches read
by batches.read_batch, one event each and all of them as one batch; in the session warehouse).
An event must be accepted by both sides or rejected by both, and an accepted event must get the
same timestamp and stored row on every path, and the same answer from the batch reader's
shortcut as from the full rules. The usual-shape shortcuts must give the verdict of the full
rules, and the batch reader's column-by-column check that of the event-by-event one.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.batches import read_batch
from ingestion.responses import lago_event
from ingestion.validation import (
    Limits,
    ValidEvent,
    _common_event,
    latest_timestamp_ms,
    usual_columns,
    usual_fields,
    validate_event,
)
from ingestion.writer import EventColumns, EventWriter, RequestStamp, event_columns, tsv_rows
from meterhouse.orgs import Organization, create_organization
from tests.conftest import Warehouse

LIMITS = Limits(max_future_s=86_400, max_event_bytes=2_048)
MISSING = object()

# Known divergence left out: inside arrays and objects the engine quotes whole floats of 2^64
# and more ("18446744073709552000"); such numbers do not fit a metric anyway.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(min_value=-1e18, max_value=1e18) | st.floats(max_value=1e-6, min_value=-1e-6),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
text_fields = st.one_of(st.text(max_size=6), st.integers(-1000, 10**12), json_values)
datetimes = st.datetimes(
    min_value=datetime(1960, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
timestamps = st.one_of(
    st.integers(min_value=-10, max_value=20_000_000_000),
    st.floats(min_value=-10, max_value=2e10, allow_nan=False),
    st.from_regex(r"\A[0-9]{1,11}(\.[0-9]{1,6})?\Z"),
    datetimes.map(lambda d: d.isoformat()),
    datetimes.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
    datetimes.map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    datetimes.map(lambda d: d.strftime("%Y-%m-%d")),
    st.sampled_from(
        [
            "2024-02-30",
            "2024-04-31",
            "2024-13-01",
            "yesterday",
            "",
            "2024-01-02T25:00:00Z",
            "2024-01-02T10:00:00+24:00",
            "2024-01-02T10:00:00.1234567891Z",
        ]
    ),
    json_values,
)
amounts = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.from_regex(r"\A-?[0-9]{1,30}(\.[0-9]{1,14})?\Z"),
    st.integers(-(2**63), 2**63 - 1),
    json_values,
)
properties = st.one_of(st.dictionaries(st.text(max_size=5), json_values, max_size=4), json_values)


def field(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(MISSING), strategy)


events = st.fixed_dictionaries(
    {
        "transaction_id": field(text_fields),
        "external_subscription_id": field(text_fields),
        "external_customer_id": field(text_fields),
        "code": field(text_fields),
        "timestamp": field(timestamps),
        "properties": field(properties),
        "precise_total_amount_cents": field(amounts),
    }
).map(lambda e: {k: v for k, v in e.items() if v is not MISSING})


NOW_MS = 1_800_000_000_000
FUTURE_LIMIT_S = NOW_MS // 1000 + LIMITS.max_future_s
# Events of the usual shape (see validation._common_event), at the edges of what it accepts.
usual_events = st.fixed_dictionaries(
    {
        "transaction_id": st.text(max_size=3),
        "external_subscription_id": st.text(max_size=3),
        "code": st.text(max_size=3),
        "timestamp": st.one_of(
            st.integers(-2, 2),
            st.integers(FUTURE_LIMIT_S - 2, FUTURE_LIMIT_S + 2),
            st.integers(10_413_791_998, 10_413_792_002),  # DateTime64(3) ends in 2299
            st.booleans(),
            timestamps,
        ),
        "properties": st.one_of(
            st.dictionaries(st.text(max_size=3), json_values, max_size=3),
            st.integers(1_950, 2_050).map(lambda n: {"pad": "x" * n}),  # around the size limit
            properties,
        ),
    },
    optional={
        "external_customer_id": st.one_of(st.text(max_size=3), st.integers(0, 9)),
        "precise_total_amount_cents": amounts,
    },
).map(lambda e: {k: v for k, v in e.items() if v is not None})  # sometimes absent: no null


class FullRulesOnly(dict[str, Any]):
    """Not exactly a dict, so validate_event skips its usual-shape shortcut."""


def test_usual_events_take_the_shortcut() -> None:
    event = {"transaction_id": "t", "external_subscription_id": "s", "code": "c", "timestamp": 1}
    assert _common_event(event, NOW_MS, LIMITS, None) is not None


@settings(max_examples=400, deadline=None)
@given(event=usual_events)
def test_usual_shape_shortcut_gives_the_verdict_of_the_full_rules(event: dict[str, Any]) -> None:
    shortcut = validate_event(event, 0, now_ms=NOW_MS, limits=LIMITS)
    full = validate_event(FullRulesOnly(event), 0, now_ms=NOW_MS, limits=LIMITS)
    assert shortcut == full
    org = uuid.UUID(int=7)
    batch = read_batch(org, [event], NOW_MS, "at", LIMITS)
    assert (batch is not None) == isinstance(full, ValidEvent)
    if batch is not None and isinstance(full, ValidEvent):
        assert batch.answer == [lago_event(org, full, "at")]


@settings(max_examples=400, deadline=None)
@given(
    batch=st.lists(usual_events, max_size=4)
    | st.lists(st.one_of(usual_events, events, json_values), max_size=4)
)
def test_batch_columns_give_the_verdicts_of_the_usual_fields(batch: list[Any]) -> None:
    """usual_columns checks a batch column by column: usual only when usual_fields finds every
    event usual, and then the very same values, transposed."""
    latest_ms = latest_timestamp_ms(NOW_MS, LIMITS)
    fields = [usual_fields(event, latest_ms) for event in batch]
    columns = usual_columns(batch, latest_ms)
    if None in fields:
        assert columns is None
        return
    assert columns is not None
    transposed = [list(column) for column in zip(*fields, strict=True)] or [[]] * 6
    assert [list(map(id, column)) for column in columns] == [
        list(map(id, column)) for column in transposed
    ]


@pytest.fixture(scope="module")
def fuzz_org(admin_client: Client) -> Organization:
    return create_organization(admin_client, "fuzz")[0]


@pytest.fixture(scope="module")
def typed_org(admin_client: Client) -> Organization:
    """Receives the same events through the group-commit path (finished rows)."""
    return create_organization(admin_client, "fuzz-typed")[0]


@pytest.fixture(scope="module")
def batch_org(admin_client: Client) -> Organization:
    """Receives the same events as Lago batches of one event (batches.read_batch)."""
    return create_organization(admin_client, "fuzz-batch")[0]


@pytest.fixture(scope="module")
def whole_batch_org(admin_client: Client) -> Organization:
    """Receives each example's events as one Lago batch: stored only if all are valid."""
    return create_organization(admin_client, "fuzz-whole-batch")[0]


@pytest.fixture(scope="module")
def writer(warehouse: Warehouse) -> EventWriter:
    return EventWriter(warehouse.settings())


def stamp_for(organization: Organization, now_us: int) -> RequestStamp:
    return RequestStamp(
        organization_id=organization.organization_id,
        request_id=uuid.uuid4(),
        ingested_at_us=now_us,
        max_timestamp_ms=now_us // 1000 + LIMITS.max_future_s * 1000,
        max_event_bytes=LIMITS.max_event_bytes,
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(events, min_size=1, max_size=25))
def test_python_and_engine_validators_agree(
    batch: list[dict[str, Any]],
    fuzz_org: Organization,
    typed_org: Organization,
    batch_org: Organization,
    whole_batch_org: Organization,
    writer: EventWriter,
    admin_client: Client,
) -> None:
    base_us = time.time_ns() // 1000
    stamps = [stamp_for(fuzz_org, base_us + i) for i in range(len(batch))]
    verdicts = [
        validate_event(event, 0, now_ms=stamp.now_ms, limits=LIMITS)
        for event, stamp in zip(batch, stamps, strict=True)
    ]
    writer.insert(
        b"".join(
            tsv_rows(stamp, [orjson.dumps(event)])
            for event, stamp in zip(batch, stamps, strict=True)
        )
    )
    rejected = writer.rejected_counts([stamp.request_id for stamp in stamps])
    stored = admin_client.query(
        "SELECT toUnixTimestamp64Micro(ingested_at), toUnixTimestamp64Milli(timestamp) "
        "FROM events WHERE organization_id = {org:UUID} "
        "AND ingested_at BETWEEN fromUnixTimestamp64Micro({lo:Int64}) "
        "AND fromUnixTimestamp64Micro({hi:Int64})",
        parameters={"org": fuzz_org.organization_id, "lo": base_us, "hi": base_us + len(batch)},
    ).result_rows
    stored_ms = {int(at): int(ms) for at, ms in stored}
    for event, stamp, verdict in zip(batch, stamps, verdicts, strict=True):
        engine_accepted = stamp.request_id not in rejected
        python_accepted = isinstance(verdict, ValidEvent)
        assert engine_accepted == python_accepted, (event, verdict)
        # A row may have been collapsed into a later duplicate of the same batch (same key).
        if isinstance(verdict, ValidEvent) and stamp.ingested_at_us in stored_ms:
            assert stored_ms[stamp.ingested_at_us] == verdict.timestamp_ms, event
    accepted = [v for v in verdicts if isinstance(v, ValidEvent)]
    keys = {
        (v.external_subscription_id, v.code, v.timestamp_ms, v.transaction_id) for v in accepted
    }
    assert len(stored_ms) == len(keys)
    # The group-commit path stores exactly what the engine path stores (one flush of them all).
    writer.insert_events(
        event_columns(
            (replace(stamp, organization_id=typed_org.organization_id), EventColumns.of([verdict]))
            for stamp, verdict in zip(stamps, verdicts, strict=True)
            if isinstance(verdict, ValidEvent)
        )
    )
    typed = stored_rows(admin_client, typed_org, base_us, len(batch))
    parsed = stored_rows(admin_client, fuzz_org, base_us, len(batch))
    assert len(typed) == len(parsed)
    for typed_row, parsed_row in zip(typed, parsed, strict=True):
        assert typed_row == parsed_row
    check_batch_path(batch, stamps, verdicts, batch_org, writer, admin_client, typed)
    check_whole_batch(batch, stamps, verdicts, whole_batch_org, writer, admin_client, typed)


def check_batch_path(
    batch: list[dict[str, Any]],
    stamps: list[RequestStamp],
    verdicts: list[ValidEvent | list[Any]],
    organization: Organization,
    writer: EventWriter,
    client: Client,
    typed: list[Any],
) -> None:
    """Each event as a one-event Lago batch: the batch reader's verdicts, answers and rows."""
    stamps = [replace(stamp, organization_id=organization.organization_id) for stamp in stamps]
    accepted = []
    for event, stamp, verdict in zip(batch, stamps, verdicts, strict=True):
        read = read_batch(organization.organization_id, [event], stamp.now_ms, "at", LIMITS)
        assert (read is not None) == isinstance(verdict, ValidEvent), event
        if read is not None and isinstance(verdict, ValidEvent):
            assert read.answer == [lago_event(organization.organization_id, verdict, "at")]
            accepted.append((stamp, read.columns))
    if accepted:
        writer.insert_events(event_columns(accepted))
    assert stored_rows(client, organization, stamps[0].ingested_at_us, len(batch)) == typed


def check_whole_batch(
    batch: list[dict[str, Any]],
    stamps: list[RequestStamp],
    verdicts: list[ValidEvent | list[Any]],
    organization: Organization,
    writer: EventWriter,
    client: Client,
    typed: list[Any],
) -> None:
    """All the events as one Lago batch: refused unless every event is valid."""
    stamp = replace(stamps[0], organization_id=organization.organization_id)
    read = read_batch(organization.organization_id, batch, stamp.now_ms, "at", LIMITS)
    assert (read is not None) == all(isinstance(v, ValidEvent) for v in verdicts)
    if read is not None:
        writer.insert_events(event_columns([(stamp, read.columns)]))
        stored = stored_rows(client, organization, stamp.ingested_at_us, 1)
        # One ingested_at for the whole request: compare without it.
        assert sorted((0, *row[1:]) for row in stored) == sorted((0, *row[1:]) for row in typed)


def stored_rows(client: Client, organization: Organization, base_us: int, count: int) -> list[Any]:
    return list(
        client.query(
            "SELECT toUnixTimestamp64Micro(ingested_at), external_subscription_id, "
            "external_customer_id, transaction_id, code, timestamp, properties, "
            "precise_total_amount_cents, raw FROM events FINAL WHERE organization_id = {org:UUID} "
            "AND ingested_at BETWEEN fromUnixTimestamp64Micro({lo:Int64}) "
            "AND fromUnixTimestamp64Micro({hi:Int64}) ORDER BY 1",
            parameters={"org": organization.organization_id, "lo": base_us, "hi": base_us + count},
        ).result_rows
    )
