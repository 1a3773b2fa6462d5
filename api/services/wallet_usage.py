"""What a customer's usage will ask of its wallets: the ongoing usage balance.

A wallet's ongoing balance is its settled balance less what the customer's draft invoices and
current usage will consume, taxes included (billing-semantics.md, "Wallets"; Lago's ongoing
balance):

- current usage: the open period of each of the customer's subscriptions, rated on read
  (``fct_current_usage``, the customers of all the wallets read in one request; the hourly
  refresh reads every organization's wallet customers in one request, ``UsageReadAhead``) and
  taxed as its invoice would be. A wallet limited to fee types or metrics counts only the
  fees it covers, tax-inclusive, as the invoice's wallet step caps it; an unlimited wallet counts
  the whole usage.
- less what finalized progressive-billing invoices already billed of those open periods (their
  lines the wallet covers, coupons removed, taxes included): their credits were spent then.
- plus the customer's draft invoices, before the wallet credits they will take at finalization
  (their total with their prepaid credits added back).

Before the first rating run has built the view, no usage is counted (the drafts still are).
Pay-in-advance charges are not in current usage; their fees are invoiced as they occur, so they
are already in a draft or a finalized invoice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import groupby

from api.schemas.subscriptions import utc
from api.services.usage import (
    UsageNotAvailable,
    UsageRow,
    current_usage_rows,
    customers_usage_rows,
    organization_taxes,
    taxed_fees,
)
from api.storage.catalog import CatalogStore, Row
from api.storage.subscriptions import live_subscriptions
from orchestration.invoices.compute import FeeInput, FeeResult, WalletBalance, covered_cents
from orchestration.invoices.context import PROGRESSIVE_INVOICES
from orchestration.invoices.money import round_cents

ZERO = Decimal(0)


@dataclass(frozen=True)
class BilledLine:
    """A line of a finalized progressive-billing invoice: usage of an open period billed early."""

    fee: FeeInput
    billed_cents: int  # after coupons, taxes included


@dataclass
class CustomerUsage:
    """A customer's open-period fees (taxed), their lines billed early, and its drafts."""

    fees: list[FeeInput]
    results: list[FeeResult]
    taxes_cents: int
    billed: list[BilledLine]
    drafts_cents: int

    def ongoing_usage_cents(self, wallet: WalletBalance) -> int:
        if wallet.fee_types or wallet.billable_metric_ids:
            usage = covered_cents(wallet, self.fees, self.results)
        else:
            usage = sum(fee.amount_cents for fee in self.fees) + self.taxes_cents
        billed = sum(line.billed_cents for line in self.billed if wallet.applies_to(line.fee))
        return usage - billed + self.drafts_cents


# The customers' pairs travel as one query parameter, which a ClickHouse server takes up to
# `http_max_field_value_size` (128 KiB by default): 1,000 pairs are ~55 KB.
READ_AHEAD_CUSTOMERS_PER_REQUEST = 1000


@dataclass(frozen=True)
class UsageReadAhead:
    """Current usage read once for customers of many organizations, as (organization id,
    external customer id) pairs: each request's time is mostly the warehouse's analysis of the
    view, whatever the customers, so the hourly refresh reads every organization's at once.
    A customer it did not ask for (a wallet created since) is read on its own."""

    customers: frozenset[tuple[uuid.UUID, str]]
    rows: dict[tuple[uuid.UUID, str], list[UsageRow]]  # by (organization, external customer)

    @classmethod
    def read(
        cls,
        store: CatalogStore,
        customers: Sequence[tuple[uuid.UUID, str]],
        per_request: int = READ_AHEAD_CUSTOMERS_PER_REQUEST,
    ) -> UsageReadAhead:
        rows: list[UsageRow] = []
        try:
            for first in range(0, len(customers), per_request):
                rows += customers_usage_rows(store, customers[first : first + per_request])
        except UsageNotAvailable:
            rows = []  # nothing rated yet: no customer has usage to read
        by_customer: dict[tuple[uuid.UUID, str], list[UsageRow]] = {}
        for row in rows:
            by_customer.setdefault((row.organization_id, row.external_customer_id), []).append(row)
        return cls(frozenset(customers), by_customer)

    def rows_of(self, organization_id: uuid.UUID, external_ids: Sequence[str]) -> list[UsageRow]:
        return [
            row
            for external_id in external_ids
            for row in self.rows.get((organization_id, external_id), [])
        ]


def usage_rows(
    store: CatalogStore,
    organization_id: uuid.UUID,
    external_ids: Sequence[str],
    read_ahead: UsageReadAhead | None,
) -> list[UsageRow]:
    """These customers' usage rows, ordered by customer and subscription: from ``read_ahead``
    where it read them, else read now."""
    ahead = [] if read_ahead is None else read_ahead.rows_of(organization_id, external_ids)
    covered = set() if read_ahead is None else read_ahead.customers
    missing = [external for external in external_ids if (organization_id, external) not in covered]
    try:
        rows = ahead + (current_usage_rows(store, organization_id, missing) if missing else [])
    except UsageNotAvailable:
        rows = ahead  # nothing rated yet: the wallets show their drafts alone
    # Stable: each subscription's rows keep their order.
    return sorted(rows, key=lambda row: (row.external_customer_id, str(row.subscription_id)))


def customers_usage(
    store: CatalogStore,
    organization_id: uuid.UUID,
    customers: Sequence[Row],
    read_ahead: UsageReadAhead | None = None,
) -> dict[uuid.UUID, CustomerUsage]:
    """Each customer's usage, every customer's open periods rated in one request (or taken from
    ``read_ahead``)."""
    if not customers:
        return {}
    by_external_id = {customer["external_id"]: customer["id"] for customer in customers}
    customer_ids = list(by_external_id.values())
    # Rating on read costs seconds even for no subscription: ask only for customers with one.
    subscribed = {
        row["customer_id"]
        for row in live_subscriptions(store, organization_id, "customer_id", customer_ids)
    }
    rated = [external for external, i in by_external_id.items() if i in subscribed]
    rows = usage_rows(store, organization_id, rated, read_ahead)
    taxes = organization_taxes(store, organization_id) if rows else {}
    drafts = draft_invoices_cents(store, organization_id, customer_ids)
    usages = {i: CustomerUsage([], [], 0, [], drafts.get(i, 0)) for i in customer_ids}
    open_periods: set[tuple[uuid.UUID, datetime | None]] = set()
    # Each subscription's open period is taxed as its own invoice would be.
    for (external_id, subscription_id), period in groupby(
        rows, key=lambda row: (row.external_customer_id, row.subscription_id)
    ):
        period_rows = list(period)
        fees, results, applied = taxed_fees(period_rows, taxes)
        usage = usages[by_external_id[external_id]]
        usage.fees += fees
        usage.results += results
        usage.taxes_cents += sum(tax.amount_cents for tax in applied)
        open_periods.add((subscription_id, utc(period_rows[0].period_from)))
    for customer_id, line in billed_early(store, organization_id, customer_ids, open_periods):
        usages[customer_id].billed.append(line)
    return usages


def draft_invoices_cents(
    store: CatalogStore, organization_id: uuid.UUID, customer_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Each customer's draft invoices, before the wallet credits they will take."""
    result = store.client.query(
        "SELECT customer_id, sum(total_amount_cents + prepaid_credit_amount_cents)"
        " FROM invoices FINAL WHERE organization_id = {org:UUID}"
        " AND customer_id IN {customers:Array(UUID)} AND status = 'draft' GROUP BY customer_id",
        parameters={"org": organization_id, "customers": customer_ids},
    )
    return {customer_id: int(cents) for customer_id, cents in result.result_rows}


def billed_early(
    store: CatalogStore,
    organization_id: uuid.UUID,
    customer_ids: list[uuid.UUID],
    open_periods: set[tuple[uuid.UUID, datetime | None]],
) -> list[tuple[uuid.UUID, BilledLine]]:
    """The lines of finalized progressive-billing invoices over the open periods, by customer."""
    if not open_periods:
        return []
    result = store.client.query(
        "SELECT f.customer_id, f.subscription_id, f.period_from, f.id, f.fee_type,"
        " f.billable_metric_id, f.amount_cents, f.taxes_base_amount_cents,"
        " f.precise_taxes_amount_cents"
        " FROM invoice_fees AS f FINAL"
        f" WHERE (f.organization_id, f.invoice_id, f.fees_version) IN ({PROGRESSIVE_INVOICES}"
        "   AND organization_id = {org:UUID} AND customer_id IN {customers:Array(UUID)})",
        parameters={"org": organization_id, "customers": customer_ids},
    )
    lines = []
    for (
        customer_id,
        subscription_id,
        period_from,
        fee_id,
        fee_type,
        metric_id,
        amount,
        base,
        taxes,
    ) in result.result_rows:
        if (subscription_id, utc(period_from)) in open_periods:
            fee = FeeInput(fee_id, amount, fee_type, billable_metric_id=metric_id)
            lines.append((customer_id, BilledLine(fee, round_cents(base) + round_cents(taxes))))
    return lines


def ongoing_usage_by_wallet(
    store: CatalogStore,
    organization_id: uuid.UUID,
    customers: dict[uuid.UUID, Row],
    wallets: Sequence[WalletBalance],
    wallet_customers: dict[uuid.UUID, uuid.UUID],
    read_ahead: UsageReadAhead | None = None,
) -> dict[uuid.UUID, int]:
    """Each wallet's ongoing usage balance in cents."""
    owners = {wallet_customers[wallet.wallet_id] for wallet in wallets}
    usages = customers_usage(
        store, organization_id, [customers[i] for i in owners & customers.keys()], read_ahead
    )
    return {
        wallet.wallet_id: usages[wallet_customers[wallet.wallet_id]].ongoing_usage_cents(wallet)
        for wallet in wallets
        if wallet_customers[wallet.wallet_id] in usages
    }
