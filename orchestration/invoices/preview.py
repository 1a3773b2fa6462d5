"""Invoice preview: what a customer's invoice would be now, computed and never written.

It bills the fees the rating mart holds for the customer that no finalized invoice holds yet
(closed periods, pay-in-advance events), with the customer's current coupons, credit notes and
wallets, exactly as the invoice asset would.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from orchestration.invoices.billing import build_invoices
from orchestration.invoices.context import DayReader
from orchestration.invoices.writer import InvoiceWriter

Rows = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]


def preview_invoices(
    client: Client,
    organization_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    external_subscription_ids: set[str] | None = None,
    fees_table: str = "fct_fees",
    now: datetime | None = None,
) -> list[Rows]:
    """One preview per currency: (invoice row, fee rows, tax rows), as the tables would hold."""
    now = now or datetime.now(UTC)
    customers_sql = (
        f"SELECT toUUID('{organization_id}') AS organization_id, "
        f"toUUID('{customer_id}') AS customer_id"
    )
    reader = DayReader(client, fees_table, customers_sql)
    fees = reader.customer_fees(now.date() + timedelta(days=1))
    if external_subscription_ids is not None:
        fees = [fee for fee in fees if fee.external_subscription_id in external_subscription_ids]
    if not fees:
        return []
    records = build_invoices(fees, reader.context(now.date()), grouping=lambda _: "preview")
    writer = InvoiceWriter(client, now)
    return [writer.as_rows(record) for record in records]
