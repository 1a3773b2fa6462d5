"""Large Lago batches, mostly of the usual shape (the batch reader's shortcut) with a few others.

The same rules, answers and rows as small batches: Lago's echo of every event, all or nothing
with each bad event named, duplicates stored once and counted.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import orjson
from clickhouse_connect.driver.client import Client

from ingestion.responses import EVENT_ID_NAMESPACE
from tests.ingestion.conftest import IngestService, stored_events, unique_subscription

LARGE_BATCH = 500
# Events of other shapes than the usual one: the answer takes the full rules' values.
UNUSUAL = [
    {"transaction_id": 123, "code": "c", "timestamp": "2024-01-02T03:04:05.678+02:00"},
    {"transaction_id": "iso-day", "code": "c", "timestamp": "2024-01-02",
     "external_customer_id": "cus-1"},
    {"transaction_id": "float-ts", "code": "c", "timestamp": 1700000000.5,
     "precise_total_amount_cents": "12.5"},
    {"transaction_id": "no-ts", "code": "c", "properties": {"ratio": 1.0, "obj": {"a": [1, 2]}}},
]  # fmt: skip


def batch_for(sub: str, size: int = LARGE_BATCH) -> list[dict[str, Any]]:
    unusual = [{**event, "external_subscription_id": sub} for event in UNUSUAL]
    usual = [
        {"transaction_id": f"tx-{i}", "external_subscription_id": sub, "code": "seats",
         "timestamp": 1700000000 + i, "properties": {"value": i}}
        for i in range(size - len(unusual))
    ]  # fmt: skip
    return usual + unusual


def without_created_at(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in event.items() if k != "created_at"} for event in events]


def test_large_batch_is_stored_and_answered_like_small_batches(
    ingest: IngestService, admin_client: Client
) -> None:
    sub = unique_subscription()
    events = batch_for(sub)
    with ingest.client() as http:
        response = http.post("/api/v1/events/batch", json={"events": events})
        assert response.status_code == 200, response.text
        # The answer for the same events, 10 at a time (same subscription).
        small = [
            http.post("/api/v1/events/batch", json={"events": events[i : i + 10]})
            for i in range(0, len(events), 10)
        ]
    answer = response.json()["events"]
    assert all(r.status_code == 200 for r in small)
    small_answer = [event for r in small for event in r.json()["events"]]
    # Only created_at differs, and the time of receipt of the event without a timestamp.
    no_ts = len(events) - 1
    assert without_created_at(answer[:no_ts]) == without_created_at(small_answer[:no_ts])
    assert answer[no_ts]["timestamp"] == answer[no_ts]["created_at"]
    org = ingest.organization.organization_id
    assert answer[0]["lago_id"] == str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{org}/{sub}/tx-0"))
    assert answer[-4]["transaction_id"] == "123"
    assert answer[-4]["timestamp"] == "2024-01-02T01:04:05.678Z"
    assert answer[-2]["timestamp"] == "2023-11-14T22:13:20.500Z"
    assert answer[-2]["precise_total_amount_cents"] == "12.5"

    rows = {row["transaction_id"]: row for row in stored_events(admin_client, org, sub)}
    assert len(rows) == LARGE_BATCH  # the retried small batches collapsed
    assert sum(int(rows[f"tx-{i}"]["properties"]["value"]) for i in range(no_ts - 3)) == sum(
        range(no_ts - 3)
    )
    assert rows["123"]["timestamp"].isoformat().startswith("2024-01-02T01:04:05.678")
    assert rows["iso-day"]["external_customer_id"] == "cus-1"
    assert rows["float-ts"]["precise_total_amount_cents"] == Decimal("12.5")
    assert rows["no-ts"]["properties"] == {"ratio": "1", "obj": '{"a":[1,2]}'}


def duplicate_count(http: httpx.Client) -> int:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("meterhouse_ingest_duplicate_events_total"):
            return int(float(line.split()[-1]))
    raise AssertionError("no duplicates metric")


def test_large_batch_retried_is_stored_once_and_counted(
    ingest: IngestService, admin_client: Client
) -> None:
    sub = unique_subscription()
    events = batch_for(sub)[:-1]  # every event with its timestamp: retries share the key
    events += [{**events[0], "transaction_id": "last"}]
    with ingest.client() as http:
        first = http.post("/api/v1/events/batch", json={"events": events})
        before = duplicate_count(http)
        retry = http.post("/api/v1/events/batch", json={"events": events})
        after = duplicate_count(http)
    assert first.status_code == retry.status_code == 200
    assert without_created_at(retry.json()["events"]) == without_created_at(first.json()["events"])
    assert after - before == LARGE_BATCH
    stored = stored_events(admin_client, ingest.organization.organization_id, sub)
    assert len(stored) == LARGE_BATCH


def test_oversized_event_of_the_usual_shape_rejects_the_batch_whole(
    ingest: IngestService, admin_client: Client
) -> None:
    # Of the usual shape, but over the 64 KiB limit: the shortcut's size check sends it to the
    # full rules, which name it; none of the request's events are stored.
    sub = unique_subscription()
    events = batch_for(sub)
    events[7]["properties"] = {"pad": "x" * 70_000}
    with ingest.client() as http:
        response = http.post("/api/v1/events/batch", json={"events": events})
        fine = http.post("/api/v1/events/batch", json={"events": batch_for(sub)[1:]})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_errors"
    assert body["errors"] == [{"index": 7, "field": "event", "reason": "event_too_large"}]
    assert body["error_details"] == {"7": {"event": ["event_too_large"]}}
    # The later batch of the same subscription is all that is stored.
    assert fine.status_code == 200
    stored = stored_events(admin_client, ingest.organization.organization_id, sub)
    assert {row["transaction_id"] for row in stored} == {
        event["transaction_id"] if isinstance(event["transaction_id"], str) else "123"
        for event in batch_for(sub)[1:]
    }


def test_large_batch_with_bad_events_names_each(
    ingest: IngestService, admin_client: Client
) -> None:
    sub = unique_subscription()
    events = batch_for(sub)
    events[3]["properties"] = {"pad": "x" * 70_000}
    events[5]["timestamp"] = "yesterday"
    del events[9]["code"]
    with ingest.client() as http:
        response = http.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"index": 3, "field": "event", "reason": "event_too_large"},
        {"index": 5, "field": "timestamp", "reason": "invalid_timestamp"},
        {"index": 9, "field": "code", "reason": "value_is_mandatory"},
    ]
    assert stored_events(admin_client, ingest.organization.organization_id, sub) == []


def test_body_with_two_events_keys_stores_what_is_answered(
    ingest: IngestService, admin_client: Client
) -> None:
    # orjson keeps the last "events" key (a JSON path in the engine would take the first): the
    # rows stored are those of the array orjson read, so the answer and the table agree.
    sub = unique_subscription()
    first, last = batch_for(sub), batch_for(sub)
    for event in last:
        event["transaction_id"] = f"last-{event['transaction_id']}"
    body = b'{"events":' + orjson.dumps(first) + b',"events":' + orjson.dumps(last) + b"}"
    with ingest.client() as http:
        response = http.post(
            "/api/v1/events/batch", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200, response.text
    answered = {event["transaction_id"] for event in response.json()["events"]}
    stored = stored_events(admin_client, ingest.organization.organization_id, sub)
    assert {row["transaction_id"] for row in stored} == answered
    assert all(tx.startswith("last-") for tx in answered)
