"""The ingest API's routes (an APIRouter, mounted by the ingest service and the billing API).

- ``POST /api/v1/events``: Lago's ``{"event": {...}}`` (answers 200 with the event), or
  CloudEvents as OpenMeter ingests them: ``application/cloudevents+json`` (one),
  ``application/cloudevents-batch+json`` (array), or plain JSON of either (answers 204).
- ``POST /api/v1/events/batch``: Lago's ``{"events": [...]}`` (answers 200 with the events).
- ``POST /api/v1/events/bulk``: NDJSON, optionally gzip/zstd (answers 200 with a count).
- ``GET /metrics``; ``GET /health`` is on ``health_router``, which only the ingest service
  mounts (the billing API answers ``/health`` with its own check).

A 2xx means every event of the request is committed in the warehouse. Batches are all or
nothing: one bad event rejects the request (422 naming each bad event) and nothing is stored.
A duplicate transaction_id (same organization and subscription) is answered as a success.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from ingestion import bulk, responses
from ingestion.batches import read_batch
from ingestion.dependencies import CurrentOrganization, IngestError, IngestRoute, State, unavailable
from ingestion.group_commit import WarehouseUnavailable
from ingestion.state import IngestState
from ingestion.timetext import iso_text
from ingestion.validation import (
    CLOUDEVENT_FIELD_NAMES,
    EventError,
    Reason,
    ValidEvent,
    cloudevent_to_lago,
    validate_event,
)
from ingestion.writer import EventColumns, RequestStamp
from meterhouse.orgs import Organization

router = APIRouter(route_class=IngestRoute)
health_router = APIRouter(route_class=IngestRoute)

CLOUDEVENT = "application/cloudevents+json"
CLOUDEVENT_BATCH = "application/cloudevents-batch+json"


def parse_json(body: bytes, state: IngestState) -> Any:
    # A batch may hold ingest_batch_max_events events of ingest_event_max_bytes each.
    if len(body) > max_json_bytes(state):
        raise IngestError(responses.error(413, "Payload Too Large", "body_too_large"))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise IngestError(
            responses.error(400, "Bad Request", "invalid_json", message=str(exc))
        ) from exc


def max_json_bytes(state: IngestState) -> int:
    return state.settings.ingest_batch_max_events * state.settings.ingest_event_max_bytes


def validate_all(
    events: list[Any],
    state: IngestState,
    endpoint: str,
    now_ms: int,
    field_names: Mapping[str, str] | None = None,
) -> list[ValidEvent]:
    """Every event valid, or IngestError(422) naming each bad one (in the caller's field names)."""
    check_batch_size(events, state, endpoint)
    valid: list[ValidEvent] = []
    errors: list[EventError] = []
    for index, event in enumerate(events):
        outcome = validate_event(event, index, now_ms=now_ms, limits=state.limits)
        if isinstance(outcome, list):
            errors.extend(outcome)
        else:
            valid.append(outcome)
    if errors:
        state.metrics.rejected[endpoint] += len(events)
        if field_names:
            errors = [replace(e, field=field_names.get(e.field, e.field)) for e in errors]
        raise IngestError(responses.validation_error(errors, batch=endpoint != "single"))
    return valid


def check_batch_size(events: list[Any], state: IngestState, endpoint: str) -> None:
    if len(events) > state.settings.ingest_batch_max_events:
        state.metrics.rejected[endpoint] += len(events)
        reason = EventError(-1, "events", "too_many_events")
        raise IngestError(
            responses.validation_error(
                [reason], batch=True, max_events=state.settings.ingest_batch_max_events
            )
        )


async def commit(
    events: list[ValidEvent], state: IngestState, organization: Organization, endpoint: str
) -> str:
    """Group-commit the events; return their created_at (ISO) once they are in the warehouse."""
    stamp = state.stamp(organization.organization_id)
    await write(stamp, EventColumns.of(events), state, organization, endpoint)
    return iso_text(stamp.now_ms)


async def write(
    stamp: RequestStamp,
    columns: EventColumns,
    state: IngestState,
    organization: Organization,
    endpoint: str,
) -> None:
    """Group-commit a request's events; return once they are in the warehouse (else 503)."""
    # The duplicates metric's keys, taken while the request's strings are in the CPU's caches.
    keys = state.recent_keys.keys(
        organization.organization_id, columns.external_subscription_id, columns.transaction_id
    )
    try:
        await state.buffer.write(stamp, columns)
    except WarehouseUnavailable as exc:
        raise unavailable(state, str(exc)) from exc
    state.metrics.accepted[endpoint] += len(columns)
    # The keys this process committed before.
    state.metrics.duplicates += state.recent_keys.count_seen_keys(keys)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@router.post("/api/v1/events", response_model=None)
async def create_event(
    request: Request, organization: CurrentOrganization, state: State
) -> Response:
    """Lago single event, or CloudEvents (one or a batch) as OpenMeter sends them."""
    content_type = request.headers.get("content-type", "")
    return await ingest_event(await request.body(), content_type, state, organization)


async def ingest_event(
    body: bytes, content_type: str, state: IngestState, organization: Organization
) -> Response:
    """``POST /api/v1/events`` once its body is read and its caller known."""
    content_type = content_type.split(";")[0].strip().lower()
    payload = parse_json(body, state)
    if content_type == CLOUDEVENT or (isinstance(payload, dict) and "specversion" in payload):
        return await ingest_cloudevents([payload], state, organization)
    if content_type == CLOUDEVENT_BATCH or isinstance(payload, list):
        if not isinstance(payload, list):
            raise IngestError(
                responses.validation_error(
                    [EventError(-1, "events", Reason.NOT_OBJECT)], batch=True
                )
            )
        return await ingest_cloudevents(payload, state, organization)
    if not isinstance(payload, dict) or "event" not in payload:
        raise IngestError(
            responses.validation_error([EventError(0, "event", Reason.MANDATORY)], batch=False)
        )
    [event] = validate_all([payload["event"]], state, "single", now_ms())
    created_at = await commit([event], state, organization, "single")
    return responses.JSONBody(
        {"event": responses.lago_event(organization.organization_id, event, created_at)}
    )


async def ingest_cloudevents(
    cloudevents: list[Any], state: IngestState, organization: Organization
) -> Response:
    # raw keeps the CloudEvent as received next to its Lago mapping.
    mapped = []
    for cloudevent in cloudevents:
        event = cloudevent_to_lago(cloudevent)
        if isinstance(event, dict):
            event["cloudevent"] = cloudevent
        mapped.append(event)
    events = validate_all(mapped, state, "cloudevents", now_ms(), CLOUDEVENT_FIELD_NAMES)
    await commit(events, state, organization, "cloudevents")
    return Response(status_code=204)


@router.post("/api/v1/events/batch", response_model=None)
async def create_events_batch(
    request: Request, organization: CurrentOrganization, state: State
) -> Response:
    """Lago batch: ``{"events": [...]}``, all accepted or all rejected."""
    return await ingest_batch(await request.body(), state, organization)


async def ingest_batch(body: bytes, state: IngestState, organization: Organization) -> Response:
    """``POST /api/v1/events/batch`` once its body is read and its caller known.

    The events are read once, from orjson's parse, into Lago's answer and the events table's
    columns (``batches.read_batch``); a batch with a bad event gets its 422 from the full rules,
    which name every bad event.
    """
    payload = parse_json(body, state)
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        raise IngestError(
            responses.validation_error([EventError(-1, "events", Reason.MANDATORY)], batch=True)
        )
    check_batch_size(events, state, "batch")
    stamp = state.stamp(organization.organization_id)
    created_at = iso_text(stamp.now_ms)
    batch = read_batch(organization.organization_id, events, stamp.now_ms, created_at, state.limits)
    if batch is None:
        validate_all(events, state, "batch", stamp.now_ms)
        raise AssertionError("validate_all refuses what read_batch refuses")
    await write(stamp, batch.columns, state, organization, "batch")
    return responses.JSONBody({"events": batch.answer})


@router.post("/api/v1/events/bulk", response_model=None)
async def create_events_bulk(
    request: Request, organization: CurrentOrganization, state: State
) -> Response:
    """NDJSON, one Lago event per line; Content-Encoding gzip or zstd. All or nothing."""
    max_bytes = state.settings.ingest_bulk_max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise IngestError(responses.error(413, "Payload Too Large", "body_too_large"))
    async with state.bulk_slots:
        try:
            spool, lines = await bulk.spool_body(
                request.stream(), request.headers.get("content-encoding", ""), max_bytes
            )
        except bulk.BodyTooLarge as exc:
            raise IngestError(
                responses.error(413, "Payload Too Large", "body_too_large", message=str(exc))
            ) from exc
        except bulk.UnsupportedEncoding as exc:
            raise IngestError(
                responses.error(415, "Unsupported Media Type", "unsupported_encoding")
            ) from exc
        except bulk.DECOMPRESSION_ERRORS as exc:
            raise IngestError(
                responses.error(400, "Bad Request", "invalid_compressed_body", message=str(exc))
            ) from exc
        with spool:
            stamp = state.stamp(organization.organization_id)
            started = time.perf_counter()
            try:
                problems = await bulk.commit_bulk(state.writer, spool, stamp, state.limits)
            except Exception as exc:
                raise unavailable(state, str(exc)) from exc
            state.metrics.bulk_seconds.observe(time.perf_counter() - started)
    if problems:
        state.metrics.rejected["bulk"] += lines
        errors = [p for p in problems if isinstance(p, EventError)]
        raw = [p for p in problems if isinstance(p, str)]
        if not errors:  # the engine refused lines the Python validators accept
            errors = [EventError(-1, "event", "rejected_by_warehouse")]
        return responses.validation_error(errors, batch=True, accepted=0, rejected=raw)
    state.metrics.accepted["bulk"] += lines
    return responses.JSONBody({"accepted": lines, "created_at": iso_text(stamp.now_ms)})


@health_router.get("/health", response_model=None)
async def health(state: State) -> Response:
    return responses.JSONBody({"status": "ok", "buffered_events": state.metrics.buffered_events})


@router.get("/metrics", response_model=None)
async def metrics(state: State) -> Response:
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")
