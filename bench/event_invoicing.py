"""Event-driven invoicing benchmark: pay-in-advance invoices and progressive billing.

Run: .venv/bin/python bench/event_invoicing.py [--subscriptions 200] [--events 20]

Starts the embedded warehouse and the billing API on free ports with a fresh data directory,
creates through the API a plan with an arrears charge, an invoiceable pay-in-advance charge and
usage thresholds, ``--subscriptions`` customers on it and ``--events`` usage events each in the
current period, and runs ``meterhouse rate run`` once (the views). Then it reports:
- the two sensors' evaluation time (the query past their cursor);
- the pay-in-advance run (materialize of ``pay_in_advance_invoices``) for one new event, then for
  one new event on every subscription: the run's share of the ingestion-to-invoice latency,
  to which the sensor interval (30 s) and the start of a Dagster run process add;
- the progressive-billing run over every subscription (each crosses a threshold), then a re-run
  that issues nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import httpx  # noqa: E402
from dagster import DagsterInstance, build_sensor_context, materialize  # noqa: E402

from meterhouse.orgs import create_organization  # noqa: E402
from orchestration.invoices.assets import (  # noqa: E402
    pay_in_advance_invoices,
    progressive_billing_invoices,
)
from orchestration.invoices.jobs import (  # noqa: E402
    pay_in_advance_events,
    usage_threshold_crossings,
)
from orchestration.resources import WarehouseResource  # noqa: E402
from tests.conftest import start_embedded_server  # noqa: E402
from tests.support.processes import REPO_ROOT, ServiceProcess, free_port, meterhouse_command  # noqa: E402
from warehouse.client import get_client  # noqa: E402
from warehouse.migrate import migrate  # noqa: E402
from warehouse.settings import Settings  # noqa: E402


class Api:
    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(path, json=body)
        assert answer.status_code < 300, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def events(self, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), 100):
            self.post("/api/v1/events/batch", {"events": events[start : start + 100]})


def catalog(api: Api, subscriptions: int) -> None:
    api.post("/api/v1/taxes", {"tax": {"name": "VAT", "code": "vat", "rate": 20.0,
                                        "applied_to_organization": True}})  # fmt: skip
    calls = api.post(
        "/api/v1/billable_metrics",
        {
            "billable_metric": {
                "name": "Calls",
                "code": "calls",
                "aggregation_type": "sum_agg",
                "field_name": "n",
            }
        },
    )
    signups = api.post("/api/v1/billable_metrics", {"billable_metric": {
        "name": "Signups", "code": "signups", "aggregation_type": "count_agg"}})  # fmt: skip
    api.post("/api/v1/plans", {"plan": {
        "name": "Metered", "code": "metered", "interval": "monthly", "amount_cents": 1000,
        "amount_currency": "EUR", "pay_in_advance": False,
        "charges": [
            {"billable_metric_id": calls["billable_metric"]["lago_id"],
             "charge_model": "standard", "properties": {"amount": "1"}},
            {"billable_metric_id": signups["billable_metric"]["lago_id"],
             "charge_model": "standard", "pay_in_advance": True, "invoiceable": True,
             "properties": {"amount": "2.5"}},
        ],
        "usage_thresholds": [{"amount_cents": 1000}, {"amount_cents": 1500, "recurring": True}],
    }})  # fmt: skip
    month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for n in range(subscriptions):
        api.post("/api/v1/customers", {"customer": {"external_id": f"c{n}", "currency": "EUR"}})
        api.post("/api/v1/subscriptions", {"subscription": {
            "external_customer_id": f"c{n}", "plan_code": "metered", "external_id": f"s{n}",
            "billing_time": "calendar", "subscription_at": month_start.isoformat()}})  # fmt: skip


def event(subscription: int, code: str, transaction: str, **properties: Any) -> dict[str, Any]:
    return {
        "transaction_id": transaction,
        "external_subscription_id": f"s{subscription}",
        "code": code,
        "timestamp": int((datetime.now(UTC) - timedelta(minutes=1)).timestamp()),
        "properties": properties,
    }


def timed(label: str, action: Any) -> Any:
    started = time.perf_counter()
    result = action()
    print(f"{label}: {time.perf_counter() - started:.2f}s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=200)
    parser.add_argument("--events", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mh-bench-event-invoicing-") as tmp:
        root = Path(tmp)
        server, url, password, _ = start_embedded_server(root / "data", root / "server.log")
        settings = Settings(warehouse_url=url, warehouse_user="admin", warehouse_password=password)
        env = {
            "WAREHOUSE_URL": url,
            "MH_WAREHOUSE_USER": "admin",
            "MH_WAREHOUSE_PASSWORD": password,
            "MH_WAREHOUSE_DATABASE": "meterhouse",
        }
        try:
            migrate(get_client(settings, database=""), "meterhouse")
            client = get_client(settings)
            port = free_port()
            api_process = ServiceProcess(
                meterhouse_command("api", "serve", "--port", str(port)),
                f"http://127.0.0.1:{port}/health", env=env, log_path=root / "api.log",
            )  # fmt: skip
            with api_process:
                _, key = create_organization(client, f"bench-{uuid.uuid4().hex[:6]}")
                api = Api(f"http://127.0.0.1:{port}", key)
                timed(
                    f"catalog, {args.subscriptions} subscriptions",
                    lambda: catalog(api, args.subscriptions),
                )
                usage = [
                    event(s, "calls", f"u{s}-{i}", n=0.01)  # 0.01 EUR each: below the thresholds
                    for s in range(args.subscriptions)
                    for i in range(args.events)
                ]
                timed(f"{len(usage)} usage events", lambda: api.events(usage))
                dbt = root / "dbt"
                timed("meterhouse rate run (views)", lambda: subprocess.run(
                    meterhouse_command("rate", "run", "--no-progress", "--no-tests"),
                    env={**os.environ, **env, "DBT_TARGET_PATH": str(dbt),
                         "DBT_LOG_PATH": str(dbt / "logs")},
                    cwd=REPO_ROOT, check=True, capture_output=True,
                ))  # fmt: skip
                resources = {
                    "warehouse": WarehouseResource(url=url, user="admin", password=password)
                }

                def run(asset: Any, config: dict[str, Any] | None = None) -> None:
                    assert materialize([asset], resources=resources,
                                       instance=DagsterInstance.ephemeral(),
                                       run_config=config or {}).success  # fmt: skip

                def sensor_request(sensor: Any, cursor: str) -> Any:
                    context = build_sensor_context(cursor=cursor, resources=resources)
                    return list(sensor(context))[0]

                cursor = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
                api.events([event(0, "signups", "one")])
                request = timed(
                    "pay_in_advance_events sensor",
                    lambda: sensor_request(pay_in_advance_events, cursor),
                )
                timed(
                    "pay-in-advance run, 1 new event",
                    lambda: run(pay_in_advance_invoices, request.run_config),
                )
                cursor = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
                api.events([event(s, "signups", f"all-{s}") for s in range(args.subscriptions)])
                request = sensor_request(pay_in_advance_events, cursor)
                timed(
                    f"pay-in-advance run, {args.subscriptions} new events",
                    lambda: run(pay_in_advance_invoices, request.run_config),
                )

                # Every subscription crosses the first threshold (1000 cents).
                api.events([event(s, "calls", f"big-{s}", n=10) for s in range(args.subscriptions)])
                timed(
                    "usage_threshold_crossings sensor",
                    lambda: sensor_request(usage_threshold_crossings, cursor),
                )
                timed(
                    f"progressive run, {args.subscriptions} crossings",
                    lambda: run(progressive_billing_invoices),
                )
                timed("progressive re-run, nothing new", lambda: run(progressive_billing_invoices))
                counts = client.query(
                    "SELECT invoice_type, count() FROM invoices FINAL GROUP BY 1 ORDER BY 1"
                ).result_rows
                print(f"invoices: { {kind: n for kind, n in counts} }")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
