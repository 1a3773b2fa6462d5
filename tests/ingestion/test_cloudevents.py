"""CloudEvents over plain HTTP: the content types OpenMeter uses, and their errors."""

from __future__ import annotations

import orjson
from clickhouse_connect.driver.client import Client

from tests.ingestion.conftest import IngestService, stored_events, unique_subscription


def cloudevent(sub: str, event_id: str, **extra: object) -> dict[str, object]:
    return {"specversion": "1.0", "id": event_id, "source": "svc", "type": "requests",
            "subject": sub, "time": "2024-05-01T10:00:00Z", "data": {"path": "/x", "ms": 12},
            **extra}  # fmt: skip


def test_cloudevents_content_types(ingest: IngestService, admin_client: Client) -> None:
    sub = unique_subscription()
    with ingest.client() as http:
        one = http.post(
            "/api/v1/events",
            content=orjson.dumps(cloudevent(sub, "ce-1", customer="cus-9")),
            headers={"content-type": "application/cloudevents+json"},
        )
        many = http.post(
            "/api/v1/events",
            content=orjson.dumps([cloudevent(sub, "ce-2"), cloudevent(sub, "ce-3")]),
            headers={"content-type": "application/cloudevents-batch+json"},
        )
        plain = http.post("/api/v1/events", json=[cloudevent(sub, "ce-4")])
    assert (one.status_code, many.status_code, plain.status_code) == (204, 204, 204)
    rows = {r["transaction_id"]: r for r in stored_events(
        admin_client, ingest.organization.organization_id, sub)}  # fmt: skip
    assert set(rows) == {"ce-1", "ce-2", "ce-3", "ce-4"}
    assert rows["ce-1"]["external_customer_id"] == "cus-9"
    assert rows["ce-2"]["properties"] == {"path": "/x", "ms": "12"}


def test_bad_cloudevents_name_their_own_attributes(
    ingest: IngestService, admin_client: Client
) -> None:
    sub = unique_subscription()
    bad = cloudevent(sub, "ce-bad", time="not-a-time", data=[1])
    del bad["type"]
    with ingest.client() as http:
        response = http.post(
            "/api/v1/events",
            content=orjson.dumps([cloudevent(sub, "ce-ok"), bad]),
            headers={"content-type": "application/cloudevents-batch+json"},
        )
        not_a_list = http.post(
            "/api/v1/events",
            content=b'{"id": 1}',
            headers={"content-type": "application/cloudevents-batch+json"},
        )
    assert response.status_code == 422
    assert {(e["index"], e["field"], e["reason"]) for e in response.json()["errors"]} == {
        (1, "type", "value_is_mandatory"),
        (1, "time", "invalid_timestamp"),
        (1, "data", "value_must_be_an_object"),
    }
    assert not_a_list.status_code == 422
    assert stored_events(admin_client, ingest.organization.organization_id, sub) == []
