"""Pay-in-advance charges invoiced as their events arrive, not at the next rating run.

The fees of the charge periods that received new events are rated on read
(``fct_pay_in_advance_fees_since``: same macros, columns and fee ids as ``fct_fees``), once per
run, and invoiced like a billing day: one invoice per event for invoiceable charges (grouping
``event:<transaction>``, the id the hourly run would give it), nothing for non-invoiceable ones.
Fees an issued invoice holds are skipped, so re-runs and overlapping windows issue nothing twice;
when fct_fees later holds the same fees, the hourly run finds them invoiced.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

from clickhouse_connect.driver.client import Client

from orchestration.invoices.billing import BillingDayResult, bill_fees
from orchestration.invoices.context import DayReader, Fee
from orchestration.invoices.progressive import customers_literal
from warehouse.views import view_query


def pay_in_advance_fees_reader(client: Client, ingested_after: datetime) -> DayReader:
    """A reader of the rated-on-read fees of periods with events ingested after the instant
    (UTC). It runs the view's stored query with the instant bound rather than selecting from the
    view, which costs the warehouse 1-2 s more per read (warehouse/views.py)."""
    instant = ingested_after.astimezone(UTC) if ingested_after.tzinfo else ingested_after
    literal = instant.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    fees = f"({view_query(client, 'fct_pay_in_advance_fees_since')})"
    return DayReader(client, fees, parameters={"ingested_after": literal})


def invoice_new_pay_in_advance_fees(
    client: Client, ingested_after: datetime, now: datetime
) -> list[BillingDayResult]:
    """Invoice the pay-in-advance fees of events ingested after ``ingested_after``."""
    fees = pay_in_advance_fees_reader(client, ingested_after).pending_fees()
    by_day: dict[date, list[Fee]] = defaultdict(list)
    for fee in fees:
        by_day[fee.billing_date].append(fee)
    results = []
    for day, day_fees in sorted(by_day.items()):
        customers = {(fee.organization_id, fee.customer_id) for fee in day_fees}
        context = DayReader(client, customers_sql=customers_literal(customers)).context(day)
        result = BillingDayResult(day=day, fees=len(day_fees))
        results.append(bill_fees(client, result, day_fees, context, now))
    return results
