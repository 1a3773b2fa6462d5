"""Latency and throughput of the billing API on the embedded warehouse, through real HTTP.

Run: .venv/bin/python bench/catalog_api.py [--n 200]
Starts a fresh embedded warehouse and `meterhouse api serve`, then times typical calls.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from meterhouse.orgs import create_organization  # noqa: E402
from tests.conftest import start_embedded_server  # noqa: E402
from tests.support.processes import ServiceProcess, free_port, meterhouse_command  # noqa: E402
from warehouse.client import get_client  # noqa: E402
from warehouse.migrate import migrate  # noqa: E402
from warehouse.settings import Settings  # noqa: E402


def timed(label: str, n: int, call: Callable[[int], httpx.Response]) -> None:
    latencies = []
    for i in range(n):
        start = time.perf_counter()
        response = call(i)
        latencies.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    latencies.sort()
    p95 = latencies[max(int(len(latencies) * 0.95) - 1, 0)]
    print(f"{label:<46} n={n:<5} p50={statistics.median(latencies):7.1f} ms  p95={p95:7.1f} ms")


def plan_body(i: int, metric_id: str) -> dict:
    tiers = [
        {"from_value": 0, "to_value": 100, "per_unit_amount": "0.01", "flat_amount": "0"},
        {"from_value": 101, "to_value": None, "per_unit_amount": "0.005", "flat_amount": "1"},
    ]
    charges = [
        {
            "billable_metric_id": metric_id,
            "charge_model": "standard",
            "properties": {"amount": "0.1"},
        },
        {
            "billable_metric_id": metric_id,
            "charge_model": "graduated",
            "properties": {"graduated_ranges": tiers},
        },
        {
            "billable_metric_id": metric_id,
            "charge_model": "volume",
            "properties": {"volume_ranges": tiers},
        },
        {
            "billable_metric_id": metric_id,
            "charge_model": "package",
            "properties": {"amount": "5", "package_size": 100, "free_units": 0},
        },
        {
            "billable_metric_id": metric_id,
            "charge_model": "standard",
            "properties": {"amount": "1"},
            "filters": [{"values": {"region": ["eu"]}, "properties": {"amount": "2"}}],
        },
    ]
    return {
        "plan": {
            "name": f"Plan {i}",
            "code": f"plan_{i}",
            "interval": "monthly",
            "amount_cents": 1000 + i,
            "amount_currency": "EUR",
            "charges": charges,
        }
    }


def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        server, url, password, _ = start_embedded_server(Path(root) / "data", Path(root) / "wh.log")
        settings = Settings(warehouse_url=url, warehouse_user="admin", warehouse_password=password)
        api = None
        try:
            migrate(get_client(settings, database=""), settings.warehouse_database)
            _, key = create_organization(get_client(settings), "bench")
            port = free_port()
            api = ServiceProcess(
                meterhouse_command("api", "serve", "--port", str(port)),
                f"http://127.0.0.1:{port}/health",
                env={
                    "WAREHOUSE_URL": url,
                    "MH_WAREHOUSE_USER": "admin",
                    "MH_WAREHOUSE_PASSWORD": password,
                },
                log_path=Path(root) / "api.log",
            ).start()
            bench(f"http://127.0.0.1:{port}", key, n)
        finally:
            if api is not None:
                api.stop()
            server.stop()


def bench(base: str, key: str, n: int) -> None:
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    metric = http.post(
        "/api/v1/billable_metrics",
        json={
            "billable_metric": {
                "name": "calls",
                "code": "calls",
                "aggregation_type": "sum_agg",
                "field_name": "v",
                "filters": [{"key": "region", "values": ["eu", "us"]}],
            }
        },
    ).json()["billable_metric"]["lago_id"]
    timed(
        "POST /customers (create)",
        n,
        lambda i: http.post(
            "/api/v1/customers", json={"customer": {"external_id": f"c{i}", "name": f"C {i}"}}
        ),
    )
    timed(
        "POST /customers (upsert existing)",
        n,
        lambda i: http.post(
            "/api/v1/customers",
            json={"customer": {"external_id": f"c{i}", "email": f"c{i}@x.test"}},
        ),
    )
    timed("GET /customers/{id}", n, lambda i: http.get(f"/api/v1/customers/c{i}"))
    timed(
        "GET /customers?per_page=100",
        20,
        lambda i: http.get("/api/v1/customers", params={"per_page": 100}),
    )
    plans = max(n // 4, 10)
    timed(
        "POST /plans (5 charges, 1 filter)",
        plans,
        lambda i: http.post("/api/v1/plans", json=plan_body(i, metric)),
    )
    timed("GET /plans/{code}", plans, lambda i: http.get(f"/api/v1/plans/plan_{i}"))
    timed(
        "GET /plans?per_page=50", 10, lambda i: http.get("/api/v1/plans", params={"per_page": 50})
    )
    timed(
        "POST /subscriptions (start)",
        n,
        lambda i: http.post(
            "/api/v1/subscriptions",
            json={
                "subscription": {
                    "external_customer_id": f"c{i}",
                    "plan_code": f"plan_{i % plans}",
                    "external_id": f"s{i}",
                }
            },
        ),
    )
    timed("GET /subscriptions/{external_id}", n, lambda i: http.get(f"/api/v1/subscriptions/s{i}"))

    def concurrent_create(i: int) -> int:
        body = {"customer": {"external_id": f"k{i}", "name": "concurrent"}}
        return http.post("/api/v1/customers", json=body).status_code

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(concurrent_create, range(n)))
    elapsed = time.perf_counter() - start
    assert set(statuses) == {200}
    print(f"{'POST /customers, 8 concurrent clients':<42} n={n:<5} {n / elapsed:7.1f} req/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    run(parser.parse_args().n)
