"""Recurring pay-in-advance charges renew at each period's start, as Lago bills them: the units
carried into the period, priced whole, on the period's first invoice when the charge is
invoiceable and as a fee paid in advance on no invoice when it is not; the period's own events
are still billed one by one. Driven as a Lago user drives it: the catalog and events through
the billing API with the official Lago client, `meterhouse rate run` day by day."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from clickhouse_connect.driver.client import Client
from lago_python_client.models import BillableMetric, Charge, Charges, Plan

from orchestration.invoices.billing import bill_day
from tests.conftest import Rater
from tests.rating.conftest import FeeRow, Tenant, fees_of
from tests.rating.test_recurring_api import (
    current_usage_by_metric,
    send,
    subscribe,
    wait_for_events,
)

pytestmark = pytest.mark.usefixtures("rating_views")


def create_catalog(tenant: Tenant) -> None:
    """Seats at 30.00, paid in advance and prorated: one charge invoiceable, the other not and
    grouped by seat, on a 49.99 monthly plan paid in advance, subscribed on 5 June 2024."""
    lago = tenant.lago
    ids = {}
    for code in ("seats", "licenses"):
        created = lago.billable_metrics.create(
            BillableMetric(
                name=code, code=code, aggregation_type="unique_count_agg", field_name="item_id",
                recurring=True,
            )
        )  # fmt: skip
        assert created is not None
        ids[code] = created.lago_id
    charges = [
        Charge(
            billable_metric_id=ids["seats"], charge_model="standard", pay_in_advance=True,
            invoiceable=True, prorated=True, properties={"amount": "30"},
        ),
        Charge(
            billable_metric_id=ids["licenses"], charge_model="standard", pay_in_advance=True,
            invoiceable=False, prorated=True,
            properties={"amount": "30", "grouped_by": ["item_id"]},
        ),
    ]  # fmt: skip
    lago.plans.create(
        Plan(
            name="Seats", code="seats", interval="monthly", amount_cents=4999,
            amount_currency="USD", pay_in_advance=True, charges=Charges(__root__=charges),
        )
    )  # fmt: skip
    subscribe(tenant, "seats", "2024-06-05T12:12:00Z")


def add_seat(tenant: Tenant, at: datetime, item_id: str) -> None:
    for code in ("seats", "licenses"):
        send(tenant, code, at.isoformat(), {"item_id": item_id})


def metric_fees(client: Client, tenant: Tenant, code: str, month: int) -> list[FeeRow]:
    """A metric's fees over one month's charge period."""
    fees = fees_of(client, tenant.organization_id, f"billable_metric_code = '{code}'")
    return [fee for fee in fees if fee["period_from"].month == month]


def charge_fees(client: Client, tenant: Tenant, code: str, month: int) -> list[tuple[object, ...]]:
    """(units, amount_cents, billing_date, pay_in_advance, invoiceable, by event) of a metric's
    fees over one month's charge period."""
    return [
        (
            float(fee["units"]), fee["amount_cents"], fee["billing_date"], fee["pay_in_advance"],
            fee["invoiceable"], fee["source_transaction_id"] is not None,
        )
        for fee in metric_fees(client, tenant, code, month)
    ]  # fmt: skip


def renewal(units: float, cents: int, day: date, invoiceable: bool) -> tuple[object, ...]:
    """A renewal as charge_fees shows it: paid in advance only when not invoiceable."""
    return (units, cents, day, int(not invoiceable), int(invoiceable), False)


def renewal_model_as_run(rater: Rater) -> str:
    """The SQL of int_rating_renewal_fees as the last run compiled it."""
    rating = rater.target_path / "compiled" / "meterhouse" / "models" / "intermediate" / "rating"
    return (rating / "int_rating_renewal_fees.sql").read_text()


def test_recurring_pay_in_advance_charges_renew_their_carried_units_each_period(
    tenant: Tenant, rater: Rater, admin_client: Client
) -> None:
    create_catalog(tenant)
    for i in range(1, 6):
        add_seat(tenant, datetime(2024, 6, 10 + i, 10), f"user_{i}")
    wait_for_events(admin_client, tenant, 10)

    rater.run("--as-of", "2024-06-30T12:00:00", "--no-tests")
    june_11 = date(2024, 6, 11)
    # Each seat from its day to 30 June (20 to 16 of 30 days, prorated units rounded up to 5
    # decimals) x 30.00: 20.00 down to 16.00, the same for each license's group. The first
    # period renews nothing.
    prorated = [0.53334, 0.56667, 0.6, 0.63334, 0.66667]
    assert sorted(charge_fees(admin_client, tenant, "seats", 6)) == [
        (prorated[5 - i], (21 - i) * 100, date(2024, 6, 10 + i), 1, 1, True)
        for i in range(5, 0, -1)
    ]
    licenses = sorted(charge_fees(admin_client, tenant, "licenses", 6))
    assert licenses[-1] == (0.66667, 2000, june_11, 1, 0, True)

    # 1 July: an incremental run without a new event renews the five seats carried into July,
    # priced whole (5 x 30.00, no proration), billed on 1 July. The invoiceable charge's renewal
    # is not paid in advance (Lago's periodic invoice); the other one is, one fee per seat.
    rater.run("--as-of", "2024-07-01T00:10:00", "--no-tests")
    july_1 = date(2024, 7, 1)
    assert charge_fees(admin_client, tenant, "seats", 7) == [renewal(5.0, 15000, july_1, True)]
    licenses = charge_fees(admin_client, tenant, "licenses", 7)
    assert licenses == [renewal(1.0, 3000, july_1, False)] * 5
    assert "where false" not in renewal_model_as_run(rater)

    # Run again at the same instant: the run before rated every renewal due in the warehouse and
    # no event came since, so no period renews and the renewal's query is not compiled in; the
    # renewals rated before stay.
    rater.run("--as-of", "2024-07-01T00:10:00", "--no-tests")
    assert renewal_model_as_run(rater).rstrip().endswith("where false")
    assert charge_fees(admin_client, tenant, "seats", 7) == [renewal(5.0, 15000, july_1, True)]
    assert charge_fees(admin_client, tenant, "licenses", 7) == licenses

    # The 1 July invoice holds July's subscription fee and the seats' renewal: 49.99 + 150.00.
    bill_day(admin_client, date(2024, 7, 1), now=datetime(2024, 7, 1, 0, 20, tzinfo=UTC))
    [invoice] = [
        invoice
        for invoice in tenant.lago.invoices.find_all({"external_customer_id": "cust"})["invoices"]
        if invoice.issuing_date == "2024-07-01"
    ]
    assert invoice.fees_amount_cents == 4999 + 15000

    # Two seats added on 12 July are billed as they come (20 of 31 days, rounded up to 0.64517,
    # x 30.00 = 19.3551: 19.36 each); 1 August renews all seven.
    for item_id in ("user_july_1", "user_july_2"):
        add_seat(tenant, datetime(2024, 7, 12, 1, 10), item_id)
    wait_for_events(admin_client, tenant, 14)
    rater.run("--as-of", "2024-08-01T01:10:00", "--no-tests")
    assert sorted(charge_fees(admin_client, tenant, "seats", 7)) == [
        (0.64517, 1936, date(2024, 7, 12), 1, 1, True),
        (0.64517, 1936, date(2024, 7, 12), 1, 1, True),
        renewal(5.0, 15000, july_1, True),
    ]
    august_1 = date(2024, 8, 1)
    assert charge_fees(admin_client, tenant, "seats", 8) == [renewal(7.0, 21000, august_1, True)]
    licenses = charge_fees(admin_client, tenant, "licenses", 8)
    assert licenses == [renewal(1.0, 3000, august_1, False)] * 7

    # Current usage of the open period (today's month) shows the seven seats carried into it,
    # as its renewal priced them: 7 x 30.00, one license group each.
    usage = current_usage_by_metric(tenant)
    assert (usage["seats"]["units"], usage["seats"]["amount_cents"]) == ("7.0", 21000)
    assert (usage["licenses"]["units"], usage["licenses"]["amount_cents"]) == ("7.0", 21000)
    assert sorted(
        (group["grouped_by"]["item_id"], group["units"], group["amount_cents"])
        for group in usage["licenses"]["grouped_usage"]
    )[0] == ("user_1", "1.0", 3000)

    # A full rebuild gives the same renewals.
    rater.run("--as-of", "2024-08-01T01:10:00", "--no-tests", "--full-refresh")
    assert charge_fees(admin_client, tenant, "seats", 8) == [renewal(7.0, 21000, august_1, True)]
    assert len(charge_fees(admin_client, tenant, "licenses", 7)) == 5 + 2

    # Each renewal's evidence is the events carried into its period: all seven seats for the
    # invoiceable charge, the seat of its group for the other one.
    for code, events in (("seats", 7), ("licenses", 1)):
        renewed = metric_fees(admin_client, tenant, code, 8)[0]
        listed = admin_client.query(
            "SELECT count(), max(timestamp) FROM fct_fee_events(fee_id = {fee:UUID})",
            parameters={"fee": renewed["fee_id"]},
        ).result_rows[0]
        assert (listed[0], listed[1] < renewed["period_from"]) == (events, True)
