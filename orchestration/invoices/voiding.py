"""Voiding a finalized invoice gives back what it consumed, as Lago does, append-only.

- Coupons and credit notes: their balances are sums of ledger rows (``coupon_consumptions``,
  ``credit_note_consumptions``) that count only while their invoice is finalized. The voided
  invoice row is therefore the give-back itself: a fixed ``once`` coupon gets its amount back, a
  recurring coupon its period, a terminated coupon is active again, a credit note its balance.
- Prepaid credits: the outbound transaction stays (it happened); an inbound ``granted``
  transaction of the same credits, tied to the voided invoice, returns them to the wallet. It
  counts only once its invoice is voided, so it is written first: a crash before the voided row
  leaves nothing given back, and the retry writes the same row again (deterministic id).

Voiding twice gives back once: every row written here has an id derived from the invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from clickhouse_connect.driver.client import Client

from orchestration.invoices.ids import now_micros, record_id
from orchestration.invoices.updates import update_invoices

# Ledger rows of these invoices do not count: drafts (not issued yet) and voided invoices.
UNCOUNTED_INVOICES = "SELECT id FROM invoices FINAL WHERE status IN ('draft', 'voided')"
VOIDED_INVOICES = "SELECT id FROM invoices FINAL WHERE status = 'voided'"
NO_INVOICE = "toUUID('00000000-0000-0000-0000-000000000000')"

# Which wallet transactions count in a balance: consumptions once their invoice is issued
# (a voided invoice's consumption still happened), give-backs once their invoice is voided.
COUNTED_WALLET_TRANSACTION = f"""(
    ifNull(invoice_id, {NO_INVOICE}) NOT IN (SELECT id FROM invoices FINAL WHERE status = 'draft')
    AND NOT (transaction_type = 'inbound' AND transaction_status = 'granted'
             AND invoice_id IS NOT NULL AND invoice_id NOT IN ({VOIDED_INVOICES}))
)"""


@dataclass(frozen=True)
class WalletRecredit:
    wallet_id: UUID
    credits: Decimal
    amount: Decimal


def wallet_recredits(
    client: Client, organization_id: UUID, invoice_id: UUID
) -> list[WalletRecredit]:
    """The prepaid credits the invoice consumed, per wallet still active (Lago does not
    recredit a terminated wallet: its credits are gone)."""
    rows = client.query(
        """
        SELECT t.wallet_id, sum(t.credit_amount), sum(t.amount)
        FROM wallet_transactions AS t FINAL
        INNER JOIN (SELECT * FROM wallets FINAL WHERE organization_id = {org:UUID}) AS w
            ON w.id = t.wallet_id
        WHERE t.organization_id = {org:UUID} AND t.invoice_id = {invoice:UUID}
          AND t.is_deleted = 0 AND t.transaction_type = 'outbound'
          AND t.transaction_status = 'invoiced' AND t.status = 'settled'
          AND w.status = 'active' AND w.is_deleted = 0
        GROUP BY t.wallet_id ORDER BY t.wallet_id
        """,
        parameters={"org": organization_id, "invoice": invoice_id},
    ).result_rows
    return [WalletRecredit(w, Decimal(c), Decimal(a)) for w, c, a in rows if c > 0]


def void_invoice_records(client: Client, invoice: dict[str, Any], now: datetime) -> None:
    """Give back the prepaid credits, then mark the invoice voided (which gives back coupons
    and credit notes). Safe to call again for the same invoice."""
    organization_id, invoice_id = invoice["organization_id"], invoice["id"]
    recredits = wallet_recredits(client, organization_id, invoice_id)
    if recredits:
        client.insert(
            "wallet_transactions",
            [
                [organization_id, record_id("wallet-recredit", invoice_id, r.wallet_id),
                 r.wallet_id, invoice["customer_id"], "inbound", "granted", "settled", "manual",
                 r.credits, r.amount, invoice_id, f"Voided invoice {invoice['number']}", now,
                 now, now, "invoicing", now_micros(), 0]
                for r in recredits
            ],
            column_names=["organization_id", "id", "wallet_id", "customer_id",
                          "transaction_type", "transaction_status", "status", "source",
                          "credit_amount", "amount", "invoice_id", "name", "settled_at",
                          "created_at", "updated_at", "changed_by", "version", "is_deleted"],
        )  # fmt: skip
    update_invoices(client, organization_id, [invoice_id], status="voided", voided_at=now)
