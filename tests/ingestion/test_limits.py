"""Configured limits, and a warehouse that is not there: 413, 422 and 503 with Retry-After."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from clickhouse_connect.driver.client import Client

from meterhouse.orgs import create_organization
from tests.conftest import Warehouse
from tests.ingestion.conftest import start_ingest, unique_subscription
from tests.support.processes import free_port

LIMITS = {
    "MH_INGEST_BULK_MAX_BYTES": "4096",
    "MH_INGEST_BATCH_MAX_EVENTS": "3",
    "MH_INGEST_EVENT_MAX_BYTES": "512",
    "MH_INGEST_MAX_FUTURE_S": "60",
}


@pytest.fixture(scope="module")
def limited(
    warehouse: Warehouse, admin_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    _, api_key = create_organization(admin_client, "limits")
    log = tmp_path_factory.mktemp("limits") / "ingest.log"
    process, url = start_ingest({**warehouse.env, **LIMITS}, log)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}) as http:
            yield http
    finally:
        process.stop()


def event(sub: str, n: int, **fields: object) -> dict[str, object]:
    return {"transaction_id": f"t{n}", "external_subscription_id": sub, "code": "c", **fields}


def test_batch_limit_is_configurable(limited: httpx.Client) -> None:
    sub = unique_subscription()
    over = limited.post("/api/v1/events/batch", json={"events": [event(sub, n) for n in range(4)]})
    assert over.status_code == 422
    assert over.json()["errors"][0]["reason"] == "too_many_events"
    ok = limited.post("/api/v1/events/batch", json={"events": [event(sub, n) for n in range(3)]})
    assert ok.status_code == 200


def test_future_window_and_event_size_are_configurable(limited: httpx.Client) -> None:
    sub = unique_subscription()
    now = time.time()
    soon = limited.post("/api/v1/events", json={"event": event(sub, 1, timestamp=now + 30)})
    later = limited.post("/api/v1/events", json={"event": event(sub, 2, timestamp=now + 120)})
    big = limited.post("/api/v1/events", json={"event": event(sub, 3, properties={"x": "y" * 600})})
    assert soon.status_code == 200
    assert later.status_code == 422
    assert later.json()["errors"][0]["reason"] == "timestamp_too_far_in_the_future"
    assert big.status_code == 422
    assert big.json()["errors"][0]["reason"] == "event_too_large"


def test_json_body_larger_than_any_valid_batch_is_refused(limited: httpx.Client) -> None:
    # 3 events of at most 512 bytes: no valid batch reaches 1,536 bytes.
    padding = {"x": "y" * 2000}
    sub = unique_subscription()
    single = limited.post("/api/v1/events", json={"event": event(sub, 1, properties=padding)})
    chunks = iter([b'{"events": [', b" " * 1024, b" " * 1024, b"]}"])  # sent chunked
    batch = limited.post("/api/v1/events/batch", content=chunks)
    for response in (single, batch):
        assert response.status_code == 413
        assert response.json()["code"] == "body_too_large"


def test_bulk_size_limit_applies_after_decompression(limited: httpx.Client) -> None:
    sub = unique_subscription()
    body = b"".join(orjson.dumps(event(sub, n)) + b"\n" for n in range(200))
    assert len(body) > 4096
    plain = limited.post("/api/v1/events/bulk", content=body)
    packed = gzip.compress(body)
    assert len(packed) < 4096
    compressed = limited.post(
        "/api/v1/events/bulk", content=packed, headers={"content-encoding": "gzip"}
    )
    assert plain.status_code == 413
    assert compressed.status_code == 413
    assert compressed.json()["code"] == "body_too_large"


def test_warehouse_unreachable_gives_503_with_retry_after(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"WAREHOUSE_URL": dead, "MH_WAREHOUSE_PASSWORD": "x", "MH_INGEST_RETRY_AFTER_S": "7"}
    process, url = start_ingest(env, tmp_path / "ingest.log")
    try:
        assert httpx.get(f"{url}/health").status_code == 200
        response = httpx.post(
            f"{url}/api/v1/events",
            json={"event": event("s", 1)},
            headers={"Authorization": "Bearer mh_any"},
            timeout=30,
        )
    finally:
        process.stop()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["code"] == "warehouse_unavailable"
