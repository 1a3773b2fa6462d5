"""The official clients, unchanged, against the ingest API: lago-python-client and openmeter."""

from __future__ import annotations

import datetime as dt

import pytest
from clickhouse_connect.driver.client import Client
from lago_python_client.client import Client as LagoClient
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.event import BatchEvent, Event
from openmeter import Client as OpenMeterClient
from openmeter.models import Event as CloudEvent

from tests.ingestion.conftest import IngestService, stored_events, unique_subscription


def test_lago_python_client_create_and_batch_create(
    ingest: IngestService, admin_client: Client
) -> None:
    sub = unique_subscription()
    lago = LagoClient(api_key=ingest.api_key, api_url=ingest.url)
    created = lago.events.create(
        Event(
            transaction_id="lago-1",
            external_subscription_id=sub,
            code="api_calls",
            timestamp=1700000000,
            precise_total_amount_cents="99.5",
            properties={"region": "eu"},
        )
    )
    assert created is not None
    assert created.transaction_id == "lago-1"
    assert created.code == "api_calls"
    lago.events.batch_create(
        BatchEvent(
            events=[
                Event(
                    transaction_id=f"lago-batch-{i}",
                    external_subscription_id=sub,
                    code="api_calls",
                    timestamp=1700000100 + i,
                    precise_total_amount_cents=None,
                    properties={"n": i},
                )
                for i in range(5)
            ]
        )
    )
    rows = stored_events(admin_client, ingest.organization.organization_id, sub)
    assert [r["transaction_id"] for r in rows] == ["lago-1", *[f"lago-batch-{i}" for i in range(5)]]


def test_lago_python_client_through_ingest_service_setting(ingest: IngestService) -> None:
    # Production points ingest_api_url at the ingest service; errors surface as LagoApiError.
    lago = LagoClient(api_key="mh_wrong", api_url=ingest.url, use_ingest_service=True,
                      ingest_api_url=ingest.url)  # fmt: skip
    with pytest.raises(LagoApiError) as raised:
        lago.events.create(
            Event(
                transaction_id="t",
                external_subscription_id="s",
                code="c",
                timestamp=None,
                precise_total_amount_cents=None,
                properties=None,
            )  # fmt: skip
        )
    assert raised.value.status_code == 401


def test_openmeter_client_ingests_cloudevents(ingest: IngestService, admin_client: Client) -> None:
    sub = unique_subscription()
    openmeter = OpenMeterClient(endpoint=ingest.url, token=ingest.api_key)
    when = dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC)
    openmeter.events.ingest_event(
        CloudEvent(
            id="om-1",
            source="tests",
            specversion="1.0",
            type="tokens",
            subject=sub,
            time=when,
            data={"tokens": 120, "model": "small"},
        )  # fmt: skip
    )
    openmeter.events.ingest_events(
        [
            CloudEvent(
                id=f"om-batch-{i}",
                source="tests",
                specversion="1.0",
                type="tokens",
                subject=sub,
                time=when,
                data={"tokens": i},
            )  # fmt: skip
            for i in range(3)
        ]
    )
    rows = {r["transaction_id"]: r for r in stored_events(
        admin_client, ingest.organization.organization_id, sub)}  # fmt: skip
    assert set(rows) == {"om-1", "om-batch-0", "om-batch-1", "om-batch-2"}
    assert rows["om-1"]["code"] == "tokens"
    assert rows["om-1"]["properties"] == {"tokens": "120", "model": "small"}
    assert rows["om-1"]["timestamp"].isoformat().startswith("2024-03-01T12:30:00")
    assert '"source":"tests"' in rows["om-1"]["raw"]
