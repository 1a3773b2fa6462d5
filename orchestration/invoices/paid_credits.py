"""Purchased wallet credits: an invoice of their own, and the credits settled once it is paid.

As in Lago, paid credits are billed on a ``credit`` invoice holding one ``credit`` fee (units:
the credits; unit amount: the wallet's rate; no tax: it is an advance payment), finalized at
once and pushed to the payment provider like any finalized invoice. The wallet transaction stays
``pending`` until the invoice's payment succeeds (``settled``: the credits join the balance) or
fails (``failed``). The invoice's grouping key names the transaction, so the payment finds it
even if the transaction's own ``invoice_id`` was not written yet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from orchestration.invoices.ids import now_micros
from orchestration.invoices.money import to_cents
from orchestration.invoices.one_off import customer_fee, issue_at_once
from orchestration.invoices.records import InvoiceRecord

GROUPING_PREFIX = "credit:"
Row = dict[str, Any]


@dataclass(frozen=True)
class PurchasedCredits:
    organization_id: uuid.UUID
    customer_id: uuid.UUID
    external_customer_id: str
    transaction_id: uuid.UUID
    credits: Decimal
    rate_amount: Decimal  # money per credit
    currency: str
    wallet_name: str | None = None


def create_credit_invoice(purchase: PurchasedCredits, client: Client) -> InvoiceRecord:
    now = datetime.now(UTC)
    fee = customer_fee(
        purchase.organization_id, purchase.customer_id, purchase.external_customer_id, "credit",
        purchase.wallet_name or "Prepaid credits", purchase.currency, now,
        units=purchase.credits, unit_amount=purchase.rate_amount,
        amount_cents=to_cents(purchase.credits * purchase.rate_amount, purchase.currency),
        tax_codes=[],
    )  # fmt: skip
    grouping = f"{GROUPING_PREFIX}{purchase.transaction_id}"
    return issue_at_once(client, [fee], grouping, "credit", now)


BOUGHT_BY_INVOICE = f"""
    SELECT toUUIDOrNull(replaceOne(grouping_key, '{GROUPING_PREFIX}', ''))
    FROM invoices FINAL
    WHERE organization_id = %(organization_id)s AND id = %(invoice_id)s AND invoice_type = 'credit'
"""


def purchases_of(client: Client, organization_id: uuid.UUID, invoice_id: uuid.UUID) -> list[Row]:
    """The wallet transactions a credit invoice bills (none for another invoice)."""
    result = client.query(
        "SELECT * FROM wallet_transactions FINAL WHERE organization_id = %(organization_id)s"
        f" AND is_deleted = 0 AND id IN ({BOUGHT_BY_INVOICE})",
        parameters={"organization_id": organization_id, "invoice_id": invoice_id},
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def settle_purchased_credits(
    client: Client, organization_id: uuid.UUID, invoice_id: uuid.UUID, payment_status: str
) -> None:
    """The credits a credit invoice bought: settled once it is paid, failed if its payment
    fails (a later success still settles them). The WHERE names the table's columns: the
    replaced ones would otherwise be read as their new values."""
    if payment_status == "succeeded":
        status, settled, failed, unsettled = "settled", "now64(3)", "NULL", "('pending', 'failed')"
    elif payment_status == "failed":
        status, settled, failed, unsettled = "failed", "NULL", "now64(3)", "('pending')"
    else:
        return
    client.command(
        f"""
        INSERT INTO wallet_transactions
        SELECT * REPLACE ('{status}' AS status, {settled} AS settled_at, {failed} AS failed_at,
                          now64(3) AS updated_at, 'invoicing' AS changed_by,
                          toUInt64({now_micros()}) AS version)
        FROM wallet_transactions AS t FINAL
        WHERE t.organization_id = %(organization_id)s AND t.is_deleted = 0
          AND t.transaction_status = 'purchased' AND t.status IN {unsettled}
          AND t.id IN ({BOUGHT_BY_INVOICE})
        """,
        parameters={"organization_id": organization_id, "invoice_id": invoice_id},
    )
