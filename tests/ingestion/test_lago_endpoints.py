"""Lago-compatible single and batch endpoints, over HTTP against a running ingest API."""

from __future__ import annotations

from decimal import Decimal

from clickhouse_connect.driver.client import Client

from tests.ingestion.conftest import IngestService, stored_events, unique_subscription


def test_single_event_is_stored_and_echoed_like_lago(
    ingest: IngestService, admin_client: Client
) -> None:
    sub = unique_subscription()
    event = {
        "transaction_id": "tx-1",
        "external_subscription_id": sub,
        "external_customer_id": "cus-1",
        "code": "api_calls",
        "timestamp": 1700000000.5,
        "properties": {"region": "eu", "count": 3, "ratio": 1.5, "flag": True, "obj": {"a": 1}},
        "precise_total_amount_cents": "1234.567",
    }
    with ingest.client() as http:
        response = http.post("/api/v1/events", json={"event": event})
    assert response.status_code == 200, response.text
    echoed = response.json()["event"]
    assert echoed["transaction_id"] == "tx-1"
    assert echoed["external_subscription_id"] == sub
    assert echoed["code"] == "api_calls"
    assert echoed["timestamp"] == "2023-11-14T22:13:20.500Z"
    assert echoed["properties"] == event["properties"]
    assert echoed["lago_id"]

    [row] = stored_events(admin_client, ingest.organization.organization_id, sub)
    assert row["code"] == "api_calls"
    assert row["external_customer_id"] == "cus-1"
    assert row["timestamp"].isoformat().startswith("2023-11-14T22:13:20.500")
    assert row["properties"] == {
        "region": "eu",
        "count": "3",
        "ratio": "1.5",
        "flag": "true",
        "obj": '{"a":1}',
    }
    assert row["precise_total_amount_cents"] == Decimal("1234.567")
    assert '"transaction_id":"tx-1"' in row["raw"]


def test_iso_timestamps_and_missing_timestamp(ingest: IngestService, admin_client: Client) -> None:
    sub = unique_subscription()
    events = [
        {"transaction_id": "a", "external_subscription_id": sub, "code": "c",
         "timestamp": "2024-01-02T03:04:05.678+02:00"},
        {"transaction_id": "b", "external_subscription_id": sub, "code": "c",
         "timestamp": "2024-01-02"},
        {"transaction_id": "c", "external_subscription_id": sub, "code": "c"},
        {"transaction_id": "d", "external_subscription_id": sub, "code": "c",
         "timestamp": "1700000000"},
    ]  # fmt: skip
    with ingest.client() as http:
        response = http.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 200, response.text
    echoed = {e["transaction_id"]: e["timestamp"] for e in response.json()["events"]}
    rows = {
        r["transaction_id"]: r
        for r in stored_events(admin_client, ingest.organization.organization_id, sub)
    }
    assert rows["a"]["timestamp"].isoformat().startswith("2024-01-02T01:04:05.678")
    assert rows["b"]["timestamp"].isoformat().startswith("2024-01-02T00:00:00")
    assert rows["d"]["timestamp"].isoformat().startswith("2023-11-14T22:13:20")
    # Without a timestamp the event takes the time of receipt, the same in the answer and table.
    stored_c = rows["c"]["timestamp"]
    assert echoed["c"] == f"{stored_c:%Y-%m-%dT%H:%M:%S}.{stored_c.microsecond // 1000:03d}Z"


def test_batch_is_stored_whole(ingest: IngestService, admin_client: Client) -> None:
    sub = unique_subscription()
    events = [
        {"transaction_id": f"tx-{i}", "external_subscription_id": sub, "code": "seats",
         "timestamp": 1700000000 + i, "properties": {"value": i}}
        for i in range(250)
    ]  # fmt: skip
    with ingest.client() as http:
        response = http.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 200, response.text
    assert [e["transaction_id"] for e in response.json()["events"]] == [
        f"tx-{i}" for i in range(250)
    ]
    rows = stored_events(admin_client, ingest.organization.organization_id, sub)
    assert len(rows) == 250
    assert sum(int(r["properties"]["value"]) for r in rows) == sum(range(250))


def test_duplicates_are_stored_once_and_answered_as_success(
    ingest: IngestService, admin_client: Client
) -> None:
    sub = unique_subscription()
    event = {"transaction_id": "dup", "external_subscription_id": sub, "code": "c",
             "timestamp": 1700000000}  # fmt: skip
    with ingest.client() as http:
        for _ in range(3):
            assert http.post("/api/v1/events", json={"event": event}).status_code == 200
        batch = http.post("/api/v1/events/batch", json={"events": [event, event]})
        assert batch.status_code == 200
        metrics = http.get("/metrics").text
    assert len(stored_events(admin_client, ingest.organization.organization_id, sub)) == 1
    duplicates = [
        line for line in metrics.splitlines()
        if line.startswith("meterhouse_ingest_duplicate_events_total")
    ]  # fmt: skip
    assert int(float(duplicates[0].split()[-1])) >= 4
