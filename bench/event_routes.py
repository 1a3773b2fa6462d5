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
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.billing_api import billing_api  # noqa: E402
from bench.catalog_api import timed  # noqa: E402
from meterhouse.orgs import create_organization  # noqa: E402

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
    with tempfile.TemporaryDirectory() as root, billing_api(Path(root)) as stack:
        organization, key = create_organization(stack.client, "bench")
        http = httpx.Client(
            base_url=stack.url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        )
        catalog(http)
        start = time.perf_counter()
        stack.client.command(
            LOAD_EVENTS_SQL,
            parameters={"org": organization.organization_id, "events": events},
        )
        print(f"loaded {events} events in {time.perf_counter() - start:.1f} s")
        print(f"meterhouse rate run in {stack.rate():.1f} s")
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
