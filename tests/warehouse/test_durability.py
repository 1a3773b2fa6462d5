"""A crash (kill -9) loses nothing the server acknowledged; SIGTERM shuts down cleanly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import ClickHouseError

from tests.conftest import start_embedded_server
from warehouse.client import get_client
from warehouse.settings import Settings

pytestmark = pytest.mark.embedded


def _client(url: str, password: str):  # type: ignore[no-untyped-def]
    settings = Settings(warehouse_url=url, warehouse_password=password, warehouse_database="")
    return get_client(settings, database="default")


def test_kill_9_during_inserts_keeps_every_acknowledged_row(tmp_path: Path) -> None:
    server, url, password, _ = start_embedded_server(tmp_path / "data", tmp_path / "server.log")
    client = _client(url, password)
    client.command("CREATE DATABASE durable ENGINE = Atomic")
    client.command(
        "CREATE TABLE durable.t (batch UInt32, i UInt32) ENGINE = MergeTree ORDER BY (batch, i)"
    )
    acknowledged: list[int] = []
    stop = threading.Event()

    def insert_loop() -> None:
        writer = _client(url, password)
        batch = 0
        while not stop.is_set():
            try:
                writer.insert(
                    "durable.t", [[batch, i] for i in range(500)], column_names=["batch", "i"]
                )
            except (ClickHouseError, OSError):
                return
            acknowledged.append(batch)
            batch += 1

    loop = threading.Thread(target=insert_loop)
    loop.start()
    time.sleep(2.0)
    server.kill()
    stop.set()
    loop.join(timeout=30)
    assert len(acknowledged) > 5

    restarted, url, password, _ = start_embedded_server(tmp_path / "data", tmp_path / "server2.log")
    try:
        rows = (
            _client(url, password)
            .query("SELECT batch, count() FROM durable.t GROUP BY batch ORDER BY batch")
            .result_rows
        )
        counts = dict(rows)
        assert all(counts.get(batch) == 500 for batch in acknowledged)
        # A batch is whole or absent: an unacknowledged one may have landed, never half of it.
        assert all(count == 500 for count in counts.values())
    finally:
        assert restarted.stop() == 0


def test_sigterm_stops_cleanly_and_data_survives(tmp_path: Path) -> None:
    server, url, password, _ = start_embedded_server(tmp_path / "data", tmp_path / "server.log")
    client = _client(url, password)
    client.command("CREATE TABLE default_kept (x UInt8) ENGINE = MergeTree ORDER BY x")
    client.command("INSERT INTO default_kept VALUES (7)")
    assert server.stop() == 0
    assert "Warehouse stopped" in server.log_tail()
    again, url, password, _ = start_embedded_server(tmp_path / "data", tmp_path / "server2.log")
    try:
        assert _client(url, password).command("SELECT x FROM default_kept") == 7
    finally:
        again.stop()
