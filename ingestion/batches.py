"""A Lago batch read once: Lago's answer to it and its columns for the events table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any, cast

import orjson

from ingestion.responses import EventIds, lago_event_body, lago_events
from ingestion.timetext import datetime_text, iso_seconds_text, iso_text
from ingestion.validation import (
    Limits,
    UsualColumns,
    UsualFields,
    latest_timestamp_ms,
    usual_columns,
    usual_fields,
    validate_event,
)
from ingestion.writer import EventColumns, property_text


@dataclass(frozen=True, slots=True)
class ReadBatch:
    answer: list[dict[str, Any]]
    columns: EventColumns


def read_batch(
    organization_id: uuid.UUID, events: list[Any], now_ms: int, created_at: str, limits: Limits
) -> ReadBatch | None:
    """Lago's answer and the rows of a batch whose events are all valid; None if one is not.

    When every event has the usual shape (string ids, integer or no timestamp, object or no
    properties, no amount, within the size limit) the batch is checked and read column by
    column, its values handed to the engine as orjson parsed them (``EventColumns``): no
    per-event objects beyond the answer's. Any other batch goes event by event, through the
    full rules for the events of other shapes, which give the same verdict and values (the
    property test checks both against the engine's rules).
    """
    latest_ms = latest_timestamp_ms(now_ms, limits)
    columns = usual_columns(events, latest_ms)
    if columns is not None and max(map(len, map(orjson.dumps, events)), default=0) <= (
        limits.max_event_bytes
    ):
        return usual_batch(organization_id, events, columns, now_ms, created_at)
    fields = list(map(usual_fields, events, repeat(latest_ms)))
    return mixed_batch(organization_id, events, fields, now_ms, created_at, limits)


def usual_batch(
    organization_id: uuid.UUID,
    events: list[dict[str, Any]],
    fields: UsualColumns,
    now_ms: int,
    created_at: str,
) -> ReadBatch:
    """A batch whose events all have the usual shape: built column by column.

    Each column of the table and of the answer is built by ``map`` or a comprehension over
    the columns ``usual_columns`` took. The events themselves are ``raw``.
    """
    transaction_ids, subscriptions, codes, customers, timestamps, properties = fields
    count = len(events)
    now_text, now_column = iso_text(now_ms), datetime_text(now_ms)
    if None in timestamps:
        answer_times = [now_text if t is None else iso_seconds_text(t) for t in timestamps]
        stored_times: list[int | str] = [now_column if t is None else t for t in timestamps]
    else:
        answer_times = list(map(iso_seconds_text, cast(list[int], timestamps)))
        stored_times = cast(list[int | str], timestamps)
    if None in properties:
        given_properties = [p or {} for p in properties]
    else:
        given_properties = cast(list[dict[str, Any]], properties)
    lago_ids = EventIds(organization_id).many(subscriptions, transaction_ids)
    answer = list(
        map(
            lago_event_body,
            lago_ids,
            transaction_ids,
            customers,
            subscriptions,
            codes,
            answer_times,
            repeat(None),
            given_properties,
            repeat(created_at),
        )
    )
    columns = EventColumns(
        external_subscription_id=subscriptions,
        external_customer_id=[c or "" for c in customers],
        transaction_id=transaction_ids,
        code=codes,
        timestamp=stored_times,
        properties=stored_texts(given_properties),
        precise_total_amount_cents=[None] * count,
        raw=events,
    )
    return ReadBatch(answer, columns)


def mixed_batch(
    organization_id: uuid.UUID,
    events: list[Any],
    fields: list[UsualFields | None],
    now_ms: int,
    created_at: str,
    limits: Limits,
) -> ReadBatch | None:
    """A batch with events of other shapes (or too large): event by event."""
    max_bytes = limits.max_event_bytes
    now_text, now_column = iso_text(now_ms), datetime_text(now_ms)
    answer: list[dict[str, Any]] = []
    columns = EventColumns()
    subscriptions, customers = columns.external_subscription_id, columns.external_customer_id
    transaction_ids, codes = columns.transaction_id, columns.code
    timestamps, stored_properties = columns.timestamp, columns.properties
    amounts, raws = columns.precise_total_amount_cents, columns.raw
    for index, (event, usual) in enumerate(zip(events, fields, strict=True)):
        text = orjson.dumps(event)
        if usual is not None and len(text) <= max_bytes:
            transaction_id, subscription, code, customer, timestamp, properties = usual
            answer.append(
                lago_event_body(
                    "",  # the batch's ids are computed at once, below
                    transaction_id,
                    customer,
                    subscription,
                    code,
                    now_text if timestamp is None else iso_seconds_text(timestamp),
                    None,
                    properties or {},
                    created_at,
                )
            )
            subscriptions.append(subscription)
            customers.append(customer or "")
            transaction_ids.append(transaction_id)
            codes.append(code)
            timestamps.append(now_column if timestamp is None else timestamp)
            stored_properties.append(stored_text(properties) if properties else {})
            amounts.append(None)
            raws.append(event)
            continue
        outcome = validate_event(event, index, now_ms=now_ms, limits=limits, line=text)
        if isinstance(outcome, list):
            return None
        answer += lago_events(organization_id, [outcome], created_at)
        columns.append(outcome)
    lago_ids = EventIds(organization_id).many(subscriptions, transaction_ids)
    for body, lago_id in zip(answer, lago_ids, strict=True):
        body["lago_id"] = lago_id
    return ReadBatch(answer, columns)


def stored_texts(properties: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``stored_text`` of every event's properties; when all their values are strings or
    integers (one check over all values at once), the objects themselves."""
    if set(map(type, chain.from_iterable(map(dict.values, properties)))) <= STR_OR_INT:
        return properties
    return list(map(stored_text, properties))


STR_OR_INT = frozenset({str, int})


def stored_text(properties: dict[str, Any]) -> dict[str, Any]:
    """Properties as the engine should read them: strings and integers as they are (the engine
    stores an integer's digits), anything else already as its stored text."""
    for value in properties.values():
        kind = type(value)
        if kind is not str and kind is not int:
            return {key: property_text(item) for key, item in properties.items()}
    return properties
