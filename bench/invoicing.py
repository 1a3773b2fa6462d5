"""Invoicing benchmark: one billing day for 10,000 customers with mixed plans.

Run: .venv/bin/python bench/invoicing.py [--customers 10000] [--push-customers 300]

Starts the embedded warehouse on a free port with a fresh data directory, loads an organization,
taxes, coupons, wallets and one billing day of fees in the fct_fees contract shape (1 to 5 fees
per customer across three plans: subscription fees, charge fees with grouped usage, some
minimum-commitment true-ups), then materializes that day's ``invoices`` partition through the
Dagster asset (without provider push) and reports invoices/s and peak memory. A second day with
``--push-customers`` Stripe customers is then materialized with the push to localstripe (the
test harness), reporting pushed invoices/s.
Then, over the rating benchmark's data (bench/rating.py: 10,000 subscriptions on 5 plans with
3-5 charges each, ``--rated-events`` events over January-March 2024, rated by ``meterhouse rate
run`` into the real fct_fees), materializes the billing day 2024-02-01 (January's calendar
periods) without the push, in its own database.
Target (2 cores): >= 500 invoices/s without the push.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dagster import DagsterInstance, materialize  # noqa: E402

from bench import rating as rating_bench  # noqa: E402
from orchestration.invoices.assets import invoice_payments, invoices, invoicing_run_config  # noqa: E402
from orchestration.resources import PaymentProvidersResource, WarehouseResource  # noqa: E402
from tests.conftest import start_embedded_server  # noqa: E402
from tests.invoicing.catalog import FCT_FEES_CONTRACT  # noqa: E402
from tests.invoicing.stripe_support import STRIPE_TEST_KEY, localstripe  # noqa: E402
from warehouse.client import get_client  # noqa: E402
from warehouse.migrate import migrate  # noqa: E402
from warehouse.settings import Settings  # noqa: E402

DAY = date(2024, 7, 1)
PUSH_DAY = date(2024, 7, 2)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
PLANS = [  # (subscription fee cents, charges per customer range, tax codes)
    (4_900, (0, 1), ["vat_standard"]),
    (19_900, (1, 3), ["vat_standard"]),
    (99_900, (2, 4), ["vat_reduced", "city"]),
]


def load(client: Any, org: uuid.UUID, customers: int, day: date, provider: str | None) -> None:
    rng = random.Random(day.toordinal())
    customer_rows, fee_rows, coupon_rows, applied_rows, wallet_rows, wallet_tx = (
        [],
        [],
        [],
        [],
        [],
        [],
    )
    period_to = datetime.combine(day, datetime.min.time(), UTC)
    for n in range(customers):
        customer = uuid.uuid4()
        customer_rows.append([org, customer, f"cust-{day}-{n}", f"Customer {n}", "EUR", provider,
                              T0, T0, 1])  # fmt: skip
        plan = uuid.uuid5(org, str(rng.randrange(len(PLANS))))
        amount, (low, high), taxes = PLANS[int(plan.int % len(PLANS))]
        subscription = uuid.uuid4()
        fees: list[tuple[str, uuid.UUID | None, int, str]] = [
            ("subscription", None, amount, "Plan")
        ]
        for charge in range(rng.randint(low, high)):
            units = rng.randint(0, 50_000)
            fees.append(("charge", uuid.uuid5(plan, str(charge)), units * 3, f"Usage {charge}"))
        if rng.random() < 0.05:
            fees.append(("commitment", None, rng.randint(100, 5_000), "Minimum commitment"))
        for fee_type, metric, cents, name in fees:
            fee_rows.append([
                org, uuid.uuid4(), fee_type, 0, customer, f"cust-{day}-{n}", subscription,
                f"sub-{n}", plan, metric, None, metric, None, {"region": "eu"} if metric else {},
                name, 0, 1, None, period_to - timedelta(days=30),
                period_to - timedelta(milliseconds=1), day, "UTC", "EUR", Decimal(1), 0,
                Decimal(cents) / 100, Decimal(cents) / 100, cents, taxes,
            ])  # fmt: skip
        if rng.random() < 0.2:
            coupon = uuid.uuid4()
            coupon_rows.append([org, coupon, f"c{n}-{day}", "Coupon", "percentage", None, None,
                                Decimal(10), "forever", "no_expiration", T0, T0, 1])  # fmt: skip
            applied_rows.append([org, uuid.uuid4(), coupon, customer, "forever", T0, T0, 1])
        if rng.random() < 0.1:
            wallet = uuid.uuid4()
            wallet_rows.append([org, wallet, customer, "EUR", Decimal(1), 50, T0, T0, 1])
            wallet_tx.append([org, uuid.uuid4(), wallet, customer, "inbound", "granted", "settled",
                              Decimal(rng.randint(1, 500)), Decimal(1), T0, T0, 1])  # fmt: skip
    client.insert("customers", customer_rows, column_names=[
        "organization_id", "id", "external_id", "name", "currency", "payment_provider",
        "created_at", "updated_at", "version"])  # fmt: skip
    client.insert("fct_fees", fee_rows, column_names=[
        "organization_id", "fee_id", "fee_type", "is_true_up", "customer_id",
        "external_customer_id", "subscription_id", "external_subscription_id", "plan_id",
        "charge_id", "charge_filter_id", "billable_metric_id", "billable_metric_code",
        "grouped_by", "invoice_display_name", "pay_in_advance", "invoiceable",
        "source_transaction_id", "period_from", "period_to", "billing_date", "timezone",
        "currency", "units", "events_count", "precise_unit_amount", "amount", "amount_cents",
        "tax_codes"])  # fmt: skip
    if coupon_rows:
        client.insert("coupons", coupon_rows, column_names=[
            "organization_id", "id", "code", "name", "coupon_type", "amount_cents",
            "amount_currency", "percentage_rate", "frequency", "expiration", "created_at",
            "updated_at", "version"])  # fmt: skip
        client.insert("applied_coupons", applied_rows, column_names=[
            "organization_id", "id", "coupon_id", "customer_id", "frequency", "created_at",
            "updated_at", "version"])  # fmt: skip
    if wallet_rows:
        client.insert("wallets", wallet_rows, column_names=[
            "organization_id", "id", "customer_id", "currency", "rate_amount", "priority",
            "created_at", "updated_at", "version"])  # fmt: skip
        client.insert("wallet_transactions", wallet_tx, column_names=[
            "organization_id", "id", "wallet_id", "customer_id", "transaction_type",
            "transaction_status", "status", "credit_amount", "amount", "created_at",
            "updated_at", "version"])  # fmt: skip


def setup_organization(client: Any) -> uuid.UUID:
    org = uuid.uuid4()
    organization = [[org, "Bench Corp", "EUR", "per_organization", "BEN", T0, T0, 1]]
    client.insert("organizations", organization,
                  column_names=["organization_id", "name", "default_currency",
                                "document_numbering", "document_number_prefix", "created_at",
                                "updated_at", "version"])  # fmt: skip
    taxes = [("vat_standard", "20"), ("vat_reduced", "5.5"), ("city", "1.25")]
    client.insert("taxes", [[org, uuid.uuid4(), code, code, Decimal(rate), T0, T0, 1]
                            for code, rate in taxes],
                  column_names=["organization_id", "id", "code", "name", "rate", "created_at",
                                "updated_at", "version"])  # fmt: skip
    return org


def scalar(client: Any, sql: str) -> int:
    return int(client.query(sql).result_rows[0][0])


def materialize_day(resources: dict[str, Any], day: date, assets: list[Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = materialize(
        assets,
        partition_key=day.isoformat(),
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        run_config=invoicing_run_config("2024-08-01T00:00:00+00:00"),
    )
    return time.perf_counter() - started, result


def server_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bill_rated_day(
    url: str, password: str, server_pid: int, root: Path, subscriptions: int, events: int
) -> None:
    """One billing day over fees the rating benchmark's data was rated into."""
    settings = Settings(warehouse_url=url, warehouse_user="admin", warehouse_password=password,
                        warehouse_database=rating_bench.DATABASE)  # fmt: skip
    migrate(get_client(settings, database=""), rating_bench.DATABASE)
    client = get_client(settings, send_receive_timeout=3600)
    org = str(setup_organization(client))
    rating_bench.seed_catalog(client, org, subscriptions)
    rating_bench.insert_events(client, org, events, subscriptions, "2024-01-01", 91 * 86400,
                               "bulk", 42, heavy_permille=20)  # fmt: skip
    environment = rating_bench.rating_environment(settings, root)
    rated = rating_bench.rate(environment, root / "dbt_target", server_pid, None,
                              "--full-refresh", "--as-of", "2024-04-01T00:00:00")  # fmt: skip
    print(f"rated {events:,} events for {subscriptions:,} subscriptions: {rated.summary()}")
    warehouse = WarehouseResource(url=url, user="admin", password=password,
                                  database=rating_bench.DATABASE)  # fmt: skip
    resources = {"warehouse": warehouse, "payment_providers": PaymentProvidersResource()}
    day = date(2024, 2, 1)
    elapsed, _ = materialize_day(resources, day, [invoices])
    count = scalar(client, "SELECT count() FROM invoices FINAL")
    fees = scalar(client, "SELECT count() FROM invoice_fees")
    print(
        f"rated data, billing day {day}: {count} invoices ({fees} fee lines) in {elapsed:.2f}s = "
        f"{count / elapsed:,.0f} invoices/s (without push)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--push-customers", type=int, default=300)
    parser.add_argument("--rated-events", type=int, default=1_000_000,
                        help="events of the rating benchmark's data to bill (0: skip)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mh-bench-invoicing-") as tmp:
        root = Path(tmp)
        server, url, password, _ = start_embedded_server(root / "data", root / "server.log")
        try:
            settings = Settings(
                warehouse_url=url,
                warehouse_user="admin",
                warehouse_password=password,
                warehouse_database="bench",
            )
            migrate(get_client(settings, database=""), "bench")
            client = get_client(settings)
            client.command(FCT_FEES_CONTRACT)
            org = setup_organization(client)
            started = time.perf_counter()
            load(client, org, args.customers, DAY, None)
            print(f"loaded {args.customers} customers in {time.perf_counter() - started:.1f}s")
            warehouse = WarehouseResource(url=url, user="admin", password=password,
                                          database="bench")  # fmt: skip
            resources: dict[str, Any] = {
                "warehouse": warehouse,
                "payment_providers": PaymentProvidersResource(),
            }
            elapsed, _ = materialize_day(resources, DAY, [invoices])
            count = scalar(client, "SELECT count() FROM invoices FINAL WHERE status = 'finalized'")
            fees = scalar(client, "SELECT count() FROM invoice_fees")
            print(
                f"without push: {count} invoices ({fees} fee lines) in {elapsed:.2f}s = "
                f"{count / elapsed:,.0f} invoices/s (Dagster materialize, one partition)"
            )
            rerun, _ = materialize_day(resources, DAY, [invoices])
            again = scalar(client, "SELECT count() FROM invoices FINAL")
            print(f"re-materialize: {rerun:.2f}s, invoices still {again}")
            with localstripe(root) as stripe_url:
                load(client, org, args.push_customers, PUSH_DAY, "stripe")
                resources["payment_providers"] = PaymentProvidersResource(
                    stripe_api_key=STRIPE_TEST_KEY, stripe_api_base=stripe_url
                )
                elapsed, _ = materialize_day(resources, PUSH_DAY, [invoices, invoice_payments])
                synced = scalar(
                    client,
                    "SELECT count() FROM invoices FINAL WHERE provider_sync_status = 'synced'",
                )
                print(
                    f"with push: {synced} invoices pushed to localstripe in {elapsed:.2f}s = "
                    f"{synced / elapsed:,.1f} invoices/s"
                )
            assert server.process is not None
            if args.rated_events:
                bill_rated_day(url, password, server.process.pid, root, args.customers,
                               args.rated_events)  # fmt: skip
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"peak RSS: bench process {peak:.0f} MB, "
                f"warehouse server {server_peak_rss_mb(server.process.pid):.0f} MB"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
