"""``meterhouse orchestration serve``: the Dagster UI and daemon over the code location."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import Warehouse
from tests.support.processes import ServiceProcess, free_port, meterhouse_command


def test_dagster_ui_serves_the_code_location(warehouse: Warehouse, tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    server = ServiceProcess(
        meterhouse_command("orchestration", "serve", "--port", str(port)),
        f"http://127.0.0.1:{port}/server_info",
        env={**warehouse.env, "MH_HOME": str(home)},
        log_path=tmp_path / "dagster.log",
        startup_timeout=300,  # dbt parse on first start, then Dagster's processes
    )
    with server:
        query = "{ assetNodes { assetKey { path } } }"
        answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=120)
        keys = {"/".join(node["assetKey"]["path"]) for node in answer.json()["data"]["assetNodes"]}
        assert {
            "invoicing/invoices",
            "invoicing/invoice_payments",
            "wallets/wallet_ongoing_balances",
            "fct_fees",
        } <= keys
    assert "enabled: false" in (home / "dagster" / "dagster.yaml").read_text()
