"""A billing day against the real warehouse: grouping, totals, numbering, ledgers, idempotency."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from clickhouse_connect.driver.client import Client

from orchestration.invoices.billing import bill_day, build_invoices
from orchestration.invoices.context import DayReader
from orchestration.invoices.writer import InvoiceWriter
from tests.conftest import Warehouse
from tests.invoicing.catalog import Catalog

DAY = date(2024, 2, 1)
NOW = datetime(2024, 2, 1, 6, tzinfo=UTC)


@pytest.fixture
def catalog(client: Client) -> Catalog:
    catalog = Catalog(client)
    catalog.organization()
    catalog.tax("vat", "19.6")
    return catalog


def invoices(client: Client, **where: Any) -> list[dict[str, Any]]:
    conditions = " AND ".join(f"{column} = %({column})s" for column in where) or "1"
    sql = f"SELECT * FROM invoices FINAL WHERE {conditions} ORDER BY billing_date, number"
    return list(client.query(sql, parameters=where).named_results())


def count(client: Client, table: str) -> int:
    return int(client.command(f"SELECT count() FROM {table} FINAL"))  # type: ignore[arg-type]


def test_customer_fees_of_the_day_make_one_finalized_invoice(
    client: Client, catalog: Catalog
) -> None:
    acme = catalog.customer("acme")
    catalog.fee(acme, 7197, DAY, tax_codes=("vat",))
    catalog.fee(acme, 2443, DAY, fee_type="charge", tax_codes=("vat",))
    catalog.fee(acme, 999, DAY + timedelta(days=1))  # another day: another partition
    result = bill_day(client, DAY, now=NOW)
    assert (result.fees, result.finalized, result.drafts) == (2, 1, 0)
    (invoice,) = invoices(client)
    assert invoice["status"] == "finalized"
    assert invoice["number"] == "ACM-202402-001"
    assert invoice["fees_amount_cents"] == 9640
    assert invoice["taxes_amount_cents"] == 1889  # 1410.588 + 478.824, rounded once
    assert invoice["total_amount_cents"] == 11529
    assert invoice["taxes_rate"] == Decimal("19.6")
    assert invoice["payment_due_date"] == DAY + timedelta(days=30)
    lines = client.query(
        "SELECT amount_cents FROM invoice_fees WHERE invoice_id = %(id)s AND fees_version = %(v)s "
        "ORDER BY amount_cents",
        parameters={"id": invoice["id"], "v": invoice["fees_version"]},
    ).result_rows
    assert [row[0] for row in lines] == [2443, 7197]


def test_rerunning_a_day_changes_nothing(client: Client, catalog: Catalog) -> None:
    for name in ("a", "b", "c"):
        customer = catalog.customer(name)
        catalog.fee(customer, 1000, DAY)
        catalog.coupon(customer, amount_cents=300)
    first = bill_day(client, DAY, now=NOW)
    before = invoices(client)
    again = bill_day(client, DAY, now=NOW + timedelta(hours=1))
    assert first.finalized == 3 and again.fees == 0
    assert invoices(client) == before
    assert sorted(i["number"] for i in before) == [f"ACM-202402-00{n}" for n in (1, 2, 3)]
    assert count(client, "coupon_consumptions") == 3
    assert count(client, "invoice_numbers") == 3


def test_once_coupon_balance_carries_to_the_next_invoice(client: Client, catalog: Catalog) -> None:
    acme = catalog.customer("acme")
    catalog.coupon(acme, frequency="once", amount_cents=15000)
    catalog.fee(acme, 10000, DAY)
    catalog.fee(acme, 10000, DAY + timedelta(days=29))
    bill_day(client, DAY, now=NOW)
    bill_day(client, DAY + timedelta(days=29), now=NOW + timedelta(days=29))
    first, second = invoices(client)
    assert (first["coupons_amount_cents"], first["total_amount_cents"]) == (10000, 0)
    assert (second["coupons_amount_cents"], second["total_amount_cents"]) == (5000, 5000)
    assert second["number"] == "ACM-202403-002"


def test_draft_stays_until_the_grace_period_ends(client: Client, catalog: Catalog) -> None:
    acme = catalog.customer("acme", invoice_grace_period=3)
    fee_id = catalog.fee(acme, 1000, DAY)
    assert bill_day(client, DAY, now=NOW).drafts == 1
    (draft,) = invoices(client)
    assert (draft["status"], draft["number"], draft["sequential_id"]) == (
        "draft",
        "ACM-DRAFT",
        None,
    )
    # The fee is corrected during the grace period: the refreshed draft shows it.
    catalog.fee(acme, 1500, DAY, fee_id=fee_id)
    client.command("OPTIMIZE TABLE fct_fees FINAL")
    bill_day(client, DAY, now=NOW + timedelta(days=1))
    (refreshed,) = invoices(client)
    assert (refreshed["status"], refreshed["total_amount_cents"]) == ("draft", 1500)
    bill_day(client, DAY, now=NOW + timedelta(days=3))
    (final,) = invoices(client)
    assert (final["status"], final["number"], final["total_amount_cents"]) == (
        "finalized",
        "ACM-202402-001",
        1500,
    )
    assert final["id"] == draft["id"]


def test_crash_between_ledgers_and_finalization_is_completed_by_a_retry(
    client: Client, catalog: Catalog
) -> None:
    acme = catalog.customer("acme")
    applied = catalog.coupon(acme, frequency="once", amount_cents=700)
    wallet = catalog.wallet(acme, credits="5")
    catalog.fee(acme, 1000, DAY)
    # A run that dies after writing the drafts and the ledgers, before the finalized rows.
    reader = DayReader(client)
    records = build_invoices(reader.fees(DAY), reader.context(DAY))
    writer = InvoiceWriter(client, NOW)
    writer.write_drafts(records)
    writer.write_ledgers(records)
    bill_day(client, DAY, now=NOW + timedelta(minutes=5))
    (invoice,) = invoices(client)
    assert invoice["status"] == "finalized"
    assert invoice["coupons_amount_cents"] == 700
    assert invoice["prepaid_credit_amount_cents"] == 300
    assert invoice["total_amount_cents"] == 0
    consumed = client.query(
        "SELECT applied_coupon_id, amount_cents, remaining_amount_cents "
        "FROM coupon_consumptions FINAL"
    ).result_rows
    assert consumed == [(applied, 700, 0)]
    outbound = client.query(
        "SELECT wallet_id, credit_amount FROM wallet_transactions FINAL "
        "WHERE transaction_type = 'outbound'"
    ).result_rows
    assert outbound == [(wallet, Decimal(3))]


def test_a_wallet_pays_the_invoices_of_days_that_start_before_it_expires(
    client: Client, catalog: Catalog
) -> None:
    expired, expiring = catalog.customer("expired"), catalog.customer("expiring")
    catalog.wallet(expired, credits="5", expiration_at=datetime(2024, 2, 1, tzinfo=UTC))
    catalog.wallet(expiring, credits="5", expiration_at=datetime(2024, 2, 1, 0, 1, tzinfo=UTC))
    for customer in (expired, expiring):
        catalog.fee(customer, 1000, DAY)
    bill_day(client, DAY, now=NOW)
    paid = {row["customer_id"]: row["prepaid_credit_amount_cents"] for row in invoices(client)}
    assert paid == {expired: 0, expiring: 500}


def test_per_customer_numbering_and_currency_split(client: Client, catalog: Catalog) -> None:
    catalog.organization(document_numbering="per_customer", document_number_prefix="PC")
    a, b = catalog.customer("a"), catalog.customer("b")
    catalog.fee(a, 100, DAY)
    catalog.fee(a, 200, DAY, currency="USD")
    catalog.fee(b, 300, DAY)
    bill_day(client, DAY, now=NOW)
    numbers: dict[UUID, list[str]] = {}
    for invoice in invoices(client):
        numbers.setdefault(invoice["customer_id"], []).append(invoice["number"])
    assert sorted(n[-3:] for n in numbers[a]) == ["001", "002"]
    assert [n[-3:] for n in numbers[b]] == ["001"]
    assert {i["currency"] for i in invoices(client, customer_id=a)} == {"EUR", "USD"}


def test_pay_in_advance_events_are_invoiced_one_by_one(client: Client, catalog: Catalog) -> None:
    acme = catalog.customer("acme")
    catalog.fee(acme, 5000, DAY)
    for transaction in ("t1", "t2"):
        catalog.fee(
            acme, 250, DAY, fee_type="charge", pay_in_advance=1, source_transaction_id=transaction
        )
    bill_day(client, DAY, now=NOW)
    totals = sorted(i["total_amount_cents"] for i in invoices(client))
    assert totals == [250, 250, 5000]


def test_fees_closing_after_finalization_get_their_own_invoice(
    client: Client, catalog: Catalog
) -> None:
    acme = catalog.customer("acme")
    catalog.fee(acme, 1000, DAY)
    bill_day(client, DAY, now=NOW)
    catalog.fee(acme, 400, DAY)
    bill_day(client, DAY, now=NOW + timedelta(hours=1))
    assert sorted(i["total_amount_cents"] for i in invoices(client)) == [400, 1000]
    bill_day(client, DAY, now=NOW + timedelta(hours=2))
    assert len(invoices(client)) == 2


def test_two_concurrent_runs_of_a_day_make_one_invoice_and_one_number_each(
    client: Client, catalog: Catalog, warehouse: Warehouse
) -> None:
    for n in range(20):
        customer = catalog.customer(f"c{n}")
        catalog.fee(customer, 1_000 + n, DAY)
        catalog.coupon(customer, frequency="once", amount_cents=100)
    database = client.database
    errors: list[BaseException] = []

    def run() -> None:
        try:
            bill_day(warehouse.client(database=database), DAY, now=NOW)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = invoices(client)
    assert len(rows) == 20
    assert sorted(r["number"] for r in rows) == [f"ACM-202402-{n:03d}" for n in range(1, 21)]
    assert count(client, "coupon_consumptions") == 20
    assert {r["total_amount_cents"] for r in rows} == {900 + n for n in range(20)}
