"""Authentication and validation errors: machine-readable, and nothing stored on rejection."""

from __future__ import annotations

import time

import httpx
from clickhouse_connect.driver.client import Client

from tests.ingestion.conftest import IngestService, stored_events, unique_subscription


def test_missing_or_unknown_key_is_401(ingest: IngestService) -> None:
    event = {"event": {"transaction_id": "x", "external_subscription_id": "s", "code": "c"}}
    no_key = httpx.post(f"{ingest.url}/api/v1/events", json=event)
    assert no_key.status_code == 401
    assert no_key.json()["code"] == "missing_api_key"
    bad_key = httpx.post(
        f"{ingest.url}/api/v1/events/batch",
        json={"events": [event["event"]]},
        headers={"Authorization": "Bearer mh_not-a-key"},
    )
    assert bad_key.status_code == 401
    assert bad_key.json() == {"status": 401, "error": "Unauthorized", "code": "invalid_api_key"}


def test_batch_with_bad_events_is_rejected_whole_naming_each(
    ingest: IngestService, admin_client: Client
) -> None:
    sub = unique_subscription()
    future = int(time.time()) + 10 * 86_400

    def event(**fields: object) -> dict[str, object]:
        return {"external_subscription_id": sub, "code": "c", **fields}

    events = [
        event(transaction_id="ok"),
        event(),
        {"transaction_id": "t2", "external_subscription_id": sub},
        event(transaction_id="t3", timestamp="yesterday"),
        event(transaction_id="t4", timestamp=future),
        event(transaction_id="t5", properties=[1, 2]),
        event(transaction_id="t6", properties={"blob": "x" * 70_000}),
        event(transaction_id="t7", precise_total_amount_cents="12,5"),
        "not an object",
    ]  # fmt: skip
    with ingest.client() as http:
        response = http.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_errors"
    assert {(e["index"], e["field"], e["reason"]) for e in body["errors"]} == {
        (1, "transaction_id", "value_is_mandatory"),
        (2, "code", "value_is_mandatory"),
        (3, "timestamp", "invalid_timestamp"),
        (4, "timestamp", "timestamp_too_far_in_the_future"),
        (5, "properties", "value_must_be_an_object"),
        (6, "event", "event_too_large"),
        (7, "precise_total_amount_cents", "invalid_decimal"),
        (8, "event", "value_must_be_an_object"),
    }
    assert body["error_details"]["1"] == {"transaction_id": ["value_is_mandatory"]}
    assert stored_events(admin_client, ingest.organization.organization_id, sub) == []


def test_single_event_errors_use_lago_envelope(ingest: IngestService) -> None:
    with ingest.client() as http:
        response = http.post("/api/v1/events", json={"event": {"code": "c"}})
        not_json = http.post(
            "/api/v1/events", content=b"{nope", headers={"content-type": "application/json"}
        )
        no_event = http.post("/api/v1/events", json={"something": 1})
    assert response.status_code == 422
    assert response.json()["error_details"] == {
        "transaction_id": ["value_is_mandatory"],
        "external_subscription_id": ["value_is_mandatory"],
    }
    assert not_json.status_code == 400
    assert not_json.json()["code"] == "invalid_json"
    assert no_event.status_code == 422


def test_too_many_events_per_batch(ingest: IngestService) -> None:
    # The service runs with the default limit, 10,000 events per batch.
    events = [{"transaction_id": str(i), "external_subscription_id": "s", "code": "c"}
              for i in range(10_001)]  # fmt: skip
    with ingest.client() as http:
        response = http.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"index": -1, "field": "events", "reason": "too_many_events"}
    ]


def test_health_and_metrics(ingest: IngestService) -> None:
    health = httpx.get(f"{ingest.url}/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    metrics = httpx.get(f"{ingest.url}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in (
        "meterhouse_ingest_events_accepted_total",
        "meterhouse_ingest_events_rejected_total",
        "meterhouse_ingest_duplicate_events_total",
        "meterhouse_ingest_flush_events_bucket",
        "meterhouse_ingest_flush_seconds_bucket",
        "meterhouse_ingest_buffered_events",
    ):
        assert name in metrics.text
