"""Latency of the billing API's event routes: finding an event by transaction_id among many,
estimating the fees of an event, and current usage, through real HTTP on the embedded warehouse.

Run: .venv/bin/python bench/event_routes.py [--events 1000000] [--n 30]
Starts a fresh embedded warehouse and `meterhouse api serve`, writes --events events of one
organization straight into the events table (100 subscriptions, one month, a metric without
charges), runs `meterhouse rate run` (the estimate and current usage read its views), then times
the calls. The estimate prices a pay-in-advance graduated charge of another metric: its cost is
the query's (analysis of the inlined macros), not the events read. Current usage is timed for a
subscription of that plan (both current-usage views, read side by side) and for one of a plan
with the same charge in arrears (one view).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.catalog_api import timed  # noqa: E402
from meterhouse.orgs import create_organization  # noqa: E402
from tests.conftest import start_embedded_server  # noqa: E402
from tests.support.processes import (  # noqa: E402
    REPO_ROOT,
    ServiceProcess,
    free_port,
    meterhouse_command,
)
from warehouse.client import get_client  # noqa: E402
from warehouse.migrate import migrate  # noqa: E402
from warehouse.settings import Settings  # noqa: E402

# Events of one organization over the last 30 days, 100 subscriptions, transaction ids tx-<n>.
LOAD_EVENTS_SQL = """
INSERT INTO events (organization_id, external_subscription_id, transaction_id, code, timestamp,
                    properties, raw)
SELECT {org:UUID}, concat('sub_', toString(number % 100)), concat('tx-', toString(number)),
       'bulk', now64(3) - toIntervalSecond(number % 2592000), map('n', toString(number % 7)),
       concat('{"properties": {"n": ', toString(number % 7), '}}')
FROM numbers({events:UInt64})
"""


def current_usage(
    http: httpx.Client, customer: str, subscription: str, _attempt: int
) -> httpx.Response:
    return http.get(
        f"/api/v1/customers/{customer}/current_usage",
        params={"external_subscription_id": subscription},
    )


def run(events: int, n: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        server, url, password, _ = start_embedded_server(Path(root) / "data", Path(root) / "wh.log")
        settings = Settings(warehouse_url=url, warehouse_user="admin", warehouse_password=password)
        env = {
            "WAREHOUSE_URL": url,
            "MH_WAREHOUSE_USER": "admin",
            "MH_WAREHOUSE_PASSWORD": password,
        }
        api = None
        try:
            migrate(get_client(settings, database=""), settings.warehouse_database)
            client = get_client(settings)
            organization, key = create_organization(client, "bench")
            port = free_port()
            api = ServiceProcess(
                meterhouse_command("api", "serve", "--port", str(port)),
                f"http://127.0.0.1:{port}/health",
                env=env,
                log_path=Path(root) / "api.log",
            ).start()
            http = httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=120,
            )
            catalog(http)
            start = time.perf_counter()
            client.command(
                LOAD_EVENTS_SQL,
                parameters={"org": organization.organization_id, "events": events},
            )
            print(f"loaded {events} events in {time.perf_counter() - start:.1f} s")
            start = time.perf_counter()
            rating = subprocess.run(
                meterhouse_command("rate", "run", "--no-progress", "--no-tests"),
                env={**os.environ, **env, "DBT_TARGET_PATH": f"{root}/dbt",
                     "DBT_LOG_PATH": f"{root}/dbt/logs"},
                cwd=REPO_ROOT, capture_output=True, text=True,
            )  # fmt: skip
            print(f"meterhouse rate run in {time.perf_counter() - start:.1f} s")
            if rating.returncode != 0:
                sys.exit(f"meterhouse rate run failed:\n{rating.stdout[-3000:]}{rating.stderr}")
            step = max(events // n, 1)
            timed(
                "GET /events/{transaction_id}",
                n,
                lambda i: http.get(f"/api/v1/events/tx-{i * step}"),
            )
            body = {"event": {"code": "calls", "external_subscription_id": "sub_0",
                              "properties": {"n": 3}}}  # fmt: skip
            timed(
                "POST /events/estimate_fees",
                max(n // 5, 3),
                lambda i: http.post("/api/v1/events/estimate_fees", json=body),
            )
            for charges, customer, subscription in (
                ("arrears", "c_arrears", "sub_arrears"),
                ("in advance", "c0", "sub_0"),
            ):
                timed(
                    f"GET /customers/{{id}}/current_usage ({charges})",
                    max(n // 5, 3),
                    partial(current_usage, http, customer, subscription),
                )
        finally:
            if api is not None:
                api.stop()
            server.stop()


def catalog(http: httpx.Client) -> None:
    """A graduated pay-in-advance charge on `calls`, subscribed by sub_0 .. sub_99, and the same
    charge in arrears, subscribed by sub_arrears."""
    metric = http.post(
        "/api/v1/billable_metrics",
        json={"billable_metric": {"name": "calls", "code": "calls", "aggregation_type": "sum_agg",
                                  "field_name": "n"}},
    ).json()["billable_metric"]["lago_id"]  # fmt: skip
    tiers = [
        {"from_value": 0, "to_value": 1000, "per_unit_amount": "0.01", "flat_amount": "0"},
        {"from_value": 1001, "to_value": None, "per_unit_amount": "0.005", "flat_amount": "1"},
    ]
    charge = {"billable_metric_id": metric, "charge_model": "graduated", "pay_in_advance": True,
              "properties": {"graduated_ranges": tiers}}  # fmt: skip
    plan = {"name": "P", "code": "p", "interval": "monthly", "amount_cents": 0,
            "amount_currency": "EUR", "charges": [charge]}  # fmt: skip
    assert http.post("/api/v1/plans", json={"plan": plan}).status_code == 200
    in_arrears = {**plan, "code": "a", "charges": [{**charge, "pay_in_advance": False}]}
    assert http.post("/api/v1/plans", json={"plan": in_arrears}).status_code == 200
    body = {"external_customer_id": "c_arrears", "plan_code": "a", "external_id": "sub_arrears",
            "subscription_at": "2020-01-01T00:00:00Z"}  # fmt: skip
    assert http.post("/api/v1/subscriptions", json={"subscription": body}).status_code == 200
    for i in range(100):
        body = {"external_customer_id": f"c{i}", "plan_code": "p", "external_id": f"sub_{i}",
                "subscription_at": "2020-01-01T00:00:00Z"}  # fmt: skip
        assert http.post("/api/v1/subscriptions", json={"subscription": body}).status_code == 200


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=30)
    arguments = parser.parse_args()
    run(arguments.events, arguments.n)
