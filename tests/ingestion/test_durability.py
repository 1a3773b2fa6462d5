"""An acknowledged event is never lost: kill -9 under load, warehouse stopped mid-load, retries."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from meterhouse.orgs import create_organization
from tests.conftest import Warehouse
from tests.ingestion.conftest import IngestService, start_ingest, unique_subscription
from tests.ingestion.loadgen import LoadGenerator
from tests.support.processes import ServiceProcess, free_port, meterhouse_command
from warehouse.client import get_client
from warehouse.migrate import migrate
from warehouse.settings import Settings


def copies_per_transaction(client: Client, organization_id: uuid.UUID, sub: str) -> dict[str, int]:
    """Rows per transaction_id as readers see them (FINAL): exactly once means all 1."""
    rows = client.query(
        "SELECT transaction_id, count() FROM events FINAL "
        "WHERE organization_id = {org:UUID} AND external_subscription_id = {sub:String} "
        "GROUP BY transaction_id",
        parameters={"org": organization_id, "sub": sub},
    ).result_rows
    return {row[0]: row[1] for row in rows}


def test_concurrent_retries_store_each_event_once(
    ingest: IngestService, admin_client: Client
) -> None:
    sub = unique_subscription()
    events = [{"transaction_id": f"retry-{i}", "external_subscription_id": sub, "code": "c",
               "timestamp": 1700000000 + i} for i in range(50)]  # fmt: skip

    def send(_: int) -> int:
        with ingest.client() as http:
            return http.post("/api/v1/events/batch", json={"events": events}).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, range(48)))
    assert statuses == [200] * 48
    copies = copies_per_transaction(admin_client, ingest.organization.organization_id, sub)
    assert copies == {f"retry-{i}": 1 for i in range(50)}


def test_kill_9_under_load_loses_no_acknowledged_event(
    warehouse: Warehouse, admin_client: Client, tmp_path: Path
) -> None:
    organization, api_key = create_organization(admin_client, "kill-9")
    sub = unique_subscription()
    process, url = start_ingest(warehouse.env, tmp_path / "ingest.log", workers=2)
    load = LoadGenerator(url, api_key, sub, threads=12).start()
    try:
        time.sleep(3)
        assert load.result.acknowledged, "no event acknowledged before the kill"
        process.kill()
    finally:
        result = load.stop()
        process.stop()
    # Restart: the service comes back and takes events again.
    process, url = start_ingest(warehouse.env, tmp_path / "ingest-2.log")
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}) as http:
            after = {"transaction_id": "after-restart", "external_subscription_id": sub,
                     "code": "load"}  # fmt: skip
            assert http.post("/api/v1/events", json={"event": after}).status_code == 200
    finally:
        process.stop()
    copies = copies_per_transaction(admin_client, organization.organization_id, sub)
    missing = result.acknowledged - set(copies)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    assert all(count == 1 for count in copies.values())
    assert result.other == []


def _embedded_server(
    data_dir: Path, port: int, log: Path, passwords: dict[str, str]
) -> ServiceProcess:
    return ServiceProcess(
        meterhouse_command("warehouse", "serve", "--port", str(port), "--data-dir", str(data_dir)),
        f"http://127.0.0.1:{port}/ping",
        env=passwords,
        log_path=log,
    ).start()


@pytest.mark.embedded
def test_warehouse_stopped_mid_load_gives_503_then_recovers_without_loss(
    tmp_path: Path,
) -> None:
    # Its own warehouse, so stopping it leaves the session's warehouse alone.
    port = free_port()
    passwords = {"MH_WAREHOUSE_ADMIN_PASSWORD": uuid.uuid4().hex,
                 "MH_WAREHOUSE_ANALYST_PASSWORD": uuid.uuid4().hex}  # fmt: skip
    data_dir = tmp_path / "data"
    server = _embedded_server(data_dir, port, tmp_path / "wh.log", passwords)
    settings = Settings(
        warehouse_url=f"http://127.0.0.1:{port}",
        warehouse_user="admin",
        warehouse_password=passwords["MH_WAREHOUSE_ADMIN_PASSWORD"],
        warehouse_database="meterhouse",
    )
    env = {
        "WAREHOUSE_URL": settings.warehouse_url,
        "MH_WAREHOUSE_USER": "admin",
        "MH_WAREHOUSE_PASSWORD": passwords["MH_WAREHOUSE_ADMIN_PASSWORD"],
        "MH_WAREHOUSE_DATABASE": "meterhouse",
        "MH_INGEST_RETRY_AFTER_S": "1",
    }
    ingest = None
    load = None
    try:
        migrate(get_client(settings, database=""), "meterhouse")
        organization, api_key = create_organization(get_client(settings), "outage")
        sub = unique_subscription()
        ingest, url = start_ingest(env, tmp_path / "ingest.log")
        load = LoadGenerator(url, api_key, sub, threads=8, retry=True).start()
        time.sleep(2)
        before_outage = len(load.result.acknowledged)
        assert before_outage > 0
        server.stop()
        time.sleep(3)
        during_outage = len(load.result.acknowledged)
        assert load.result.unavailable > 0, "no 503 while the warehouse was down"
        server = _embedded_server(data_dir, port, tmp_path / "wh.log", passwords)
        deadline = time.monotonic() + 30
        while len(load.result.acknowledged) <= during_outage + 100:
            assert time.monotonic() < deadline, "ingest did not recover"
            time.sleep(0.2)
        result = load.stop()
        load = None
        copies = copies_per_transaction(get_client(settings), organization.organization_id, sub)
        assert result.acknowledged <= set(copies), "acknowledged events lost"
        assert all(count == 1 for count in copies.values())
        assert result.other == []
        # Bounded by construction: nothing waits in the buffer once the load stopped.
        health = httpx.get(f"{url}/health").json()
        assert health["buffered_events"] == 0
    finally:
        if load is not None:
            load.stop()
        if ingest is not None:
            ingest.stop()
        server.stop()


def test_sigterm_under_load_flushes_what_it_acknowledged(
    warehouse: Warehouse, admin_client: Client, tmp_path: Path
) -> None:
    organization, api_key = create_organization(admin_client, "sigterm")
    sub = unique_subscription()
    process, url = start_ingest(warehouse.env, tmp_path / "ingest.log")
    load = LoadGenerator(url, api_key, sub, threads=8).start()
    try:
        time.sleep(2)
        assert process.process is not None
        os.killpg(process.process.pid, signal.SIGTERM)
        # uvicorn re-raises the signal after its graceful shutdown.
        assert process.process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        result = load.stop()
        process.stop()
    copies = copies_per_transaction(admin_client, organization.organization_id, sub)
    assert result.acknowledged and result.acknowledged <= set(copies)


def test_retries_without_timestamp_are_deduplicated_by_readers(
    ingest: IngestService, admin_client: Client
) -> None:
    # Each retry takes its own time of receipt, so the rows differ in the sorting key; readers
    # (the dbt staging model) keep the latest ingested row per transaction_id.
    sub = unique_subscription()
    event = {"transaction_id": "no-ts", "external_subscription_id": sub, "code": "c"}
    with ingest.client() as http:
        for _ in range(3):
            assert http.post("/api/v1/events", json={"event": event}).status_code == 200
    latest = admin_client.query(
        "SELECT transaction_id, count() AS rows, argMax(timestamp, ingested_at) AS ts, "
        "max(timestamp) AS newest FROM events "
        "WHERE organization_id = {org:UUID} AND external_subscription_id = {sub:String} "
        "GROUP BY organization_id, external_subscription_id, transaction_id",
        parameters={"org": ingest.organization.organization_id, "sub": sub},
    ).result_rows
    assert len(latest) == 1
    [(transaction_id, rows, ts, newest)] = latest
    assert (transaction_id, rows, ts) == ("no-ts", 3, newest)
