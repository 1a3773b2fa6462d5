"""The hourly refresh of wallets' ongoing balances over many organizations.

Run: .venv/bin/python bench/wallet_refresh.py [--organizations 20] [--customers 5] [--repeat 3]

Starts a fresh embedded warehouse and `meterhouse api serve`; creates the organizations through
the billing API, each with a metric, a plan with a graduated charge billed in arrears, and
customers subscribed to it today, each with a wallet and a few events; runs `meterhouse rate run`
(current usage reads its views), then times `refresh_wallets` (what the `wallet_ongoing_balances`
asset runs every hour) --repeat times, and prints the median and the warehouse's CPU seconds per
refresh. Each refresh reads every wallet's ongoing balance: its customer's current usage, rated
on read.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from api.services.wallet_refresh import refresh_wallets  # noqa: E402
from api.storage.catalog import CatalogStore  # noqa: E402
from bench.billing_api import billing_api  # noqa: E402
from bench.process import cpu_seconds  # noqa: E402
from meterhouse.orgs import create_organization  # noqa: E402

TIERS = [
    {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "2"},
    {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "0"},
]


def organization_catalog(http: httpx.Client, customers: int) -> None:
    """A graduated `calls` charge in arrears, subscribed today by each customer, each with a
    wallet of 100 credits and three events."""
    metric = http.post(
        "/api/v1/billable_metrics",
        json={"billable_metric": {"name": "calls", "code": "calls", "aggregation_type": "sum_agg",
                                  "field_name": "n"}},
    ).json()["billable_metric"]["lago_id"]  # fmt: skip
    charge = {"billable_metric_id": metric, "charge_model": "graduated",
              "properties": {"graduated_ranges": TIERS}}  # fmt: skip
    plan = {"name": "usage", "code": "usage", "interval": "monthly", "amount_cents": 0,
            "amount_currency": "EUR", "charges": [charge]}  # fmt: skip
    http.post("/api/v1/plans", json={"plan": plan}).raise_for_status()
    for number in range(customers):
        customer = f"c{number}"
        subscription = {"external_customer_id": customer, "plan_code": "usage",
                        "external_id": f"sub_{number}"}  # fmt: skip
        http.post("/api/v1/subscriptions", json={"subscription": subscription}).raise_for_status()
        wallet = {"external_customer_id": customer, "rate_amount": "1", "currency": "EUR",
                  "granted_credits": "100"}  # fmt: skip
        http.post("/api/v1/wallets", json={"wallet": wallet}).raise_for_status()
        events = [
            {
                "transaction_id": str(uuid.uuid4()),
                "external_subscription_id": f"sub_{number}",
                "code": "calls",
                "properties": {"n": n},
            }  # fmt: skip
            for n in (3, 4, 5)
        ]
        http.post("/api/v1/events/batch", json={"events": events}).raise_for_status()


def run(organizations: int, customers: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as root, billing_api(Path(root)) as stack:
        for number in range(organizations):
            _, key = create_organization(stack.client, f"bench-{number}")
            with httpx.Client(
                base_url=stack.url, headers={"Authorization": f"Bearer {key}"}, timeout=120
            ) as http:
                organization_catalog(http, customers)
        print(f"{organizations} organizations of {customers} customers with a wallet each")
        stack.rate()
        store = CatalogStore(stack.client)
        walls, cpus = [], []
        for _ in range(repeat):
            cpu_before, started = cpu_seconds(stack.warehouse_pid), time.perf_counter()
            refresh_wallets(store, datetime.now(UTC))
            walls.append(time.perf_counter() - started)
            cpus.append(cpu_seconds(stack.warehouse_pid) - cpu_before)
        print(
            f"refresh_wallets: median {statistics.median(walls):.2f} s wall "
            f"({', '.join(f'{wall:.2f}' for wall in walls)}), "
            f"{statistics.median(cpus):.2f} warehouse CPU-s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--organizations", type=int, default=20)
    parser.add_argument("--customers", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run(args.organizations, args.customers, args.repeat)


if __name__ == "__main__":
    main()
