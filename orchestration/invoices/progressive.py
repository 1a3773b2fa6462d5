"""Progressive billing: an invoice as soon as a subscription's usage crosses a threshold.

Lifetime usage of a subscription = usage already billed + usage of the open period not billed
yet. Billed = its rated charge fees of closed periods (fct_fees) + what progressive invoices
billed of periods not rated yet. A fixed threshold is crossed when billed < threshold <= lifetime
usage; a recurring one (a step above the largest fixed threshold) when lifetime usage reaches a
step above the one billed usage had reached, which for billed usage past the largest fixed
threshold is Lago's `(billed - largest) mod step + new usage >= step`. The invoice bills the open
period's usage not billed yet, fee by fee; the period-end invoice credits it back
(``DayContext.progressive_billed``).

Set-based: a handful of queries for every subscription with thresholds, the open period rated
once (``fct_open_period_fees``). Idempotent: the invoice id is derived from the subscription and
the usage level crossed, a threshold applied by an issued invoice never fires again, and runs
are serialized in the invoicing pool.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from orchestration.invoices.billing import build_invoices, write_invoices
from orchestration.invoices.context import (
    FEE_COLUMNS,
    PROGRESSIVE_INVOICES,
    DayReader,
    Fee,
    UsageKey,
    progressive_billed,
    usage_key,
)
from orchestration.invoices.ids import record_id
from orchestration.invoices.money import from_cents
from orchestration.invoices.records import InvoiceRecord
from warehouse.views import view_query

OPEN_PERIOD_FEES = "fct_open_period_fees"
THRESHOLD_PLANS = "SELECT plan_id FROM usage_thresholds FINAL WHERE is_deleted = 0"


@dataclass(frozen=True)
class UsageThreshold:
    id: UUID
    amount_cents: int
    recurring: bool
    display_name: str | None = None


@dataclass(frozen=True)
class Crossing:
    threshold: UsageThreshold
    crossed_amount_cents: int  # the threshold, or for a recurring one the step reached


def crossed_thresholds(
    thresholds: Iterable[UsageThreshold],
    billed_cents: int,
    lifetime_cents: int,
    applied: Iterable[tuple[UUID, int]] = (),
) -> list[Crossing]:
    """The thresholds lifetime usage reaches (>=) and billed usage had not, minus those an issued
    invoice already applied (a fixed threshold fires once; a recurring one once per step)."""
    applied = set(applied)
    thresholds = list(thresholds)
    fixed = sorted((t for t in thresholds if not t.recurring), key=lambda t: t.amount_cents)
    crossings = [
        Crossing(t, t.amount_cents)
        for t in fixed
        if billed_cents < t.amount_cents <= lifetime_cents and (t.id, t.amount_cents) not in applied
    ]
    step = next((t for t in thresholds if t.recurring and t.amount_cents > 0), None)
    if step is not None:
        base = fixed[-1].amount_cents if fixed else 0
        reached = (lifetime_cents - base) // step.amount_cents if lifetime_cents > base else 0
        before = max(billed_cents - base, 0) // step.amount_cents
        level = base + reached * step.amount_cents
        highest_applied = max((lv for tid, lv in applied if tid == step.id), default=0)
        if reached > before and level > highest_applied:
            crossings.append(Crossing(step, level))
    return crossings


@dataclass(frozen=True)
class SubscriptionUsage:
    """One subscription's open period: its usage fees and what is not billed of each yet."""

    subscription_id: UUID
    plan_id: UUID
    billed_cents: int
    unbilled: list[Fee]  # the open period's fees reduced to their amounts not billed yet

    @property
    def lifetime_cents(self) -> int:
        return self.billed_cents + sum(fee.amount_cents for fee in self.unbilled)


@dataclass(frozen=True)
class ProgressiveInvoice:
    usage: SubscriptionUsage
    crossings: list[Crossing]

    @property
    def grouping(self) -> str:
        level = max(c.crossed_amount_cents for c in self.crossings)
        return f"progressive:{self.usage.subscription_id}:{level}"


class ProgressiveBilling:
    """Finds crossed thresholds of every subscription and issues their invoices."""

    def __init__(self, client: Client, fees_table: str = "fct_fees") -> None:
        self.client = client
        self.fees_table = fees_table

    def due_invoices(self, now: datetime) -> list[ProgressiveInvoice]:
        fees = self._open_period_fees()
        if not fees:
            return []
        thresholds = self._thresholds()
        applied = self._applied()
        rated, rated_periods = self._rated_usage()
        billed_lines = self._progressive_lines()
        due = []
        by_subscription: dict[UUID, list[Fee]] = defaultdict(list)
        for fee in fees:
            assert fee.subscription_id is not None  # rated usage always has its subscription
            by_subscription[fee.subscription_id].append(fee)
        for subscription_id, open_fees in sorted(by_subscription.items(), key=lambda i: str(i[0])):
            plan_id = open_fees[0].plan_id
            assert plan_id is not None
            billed_unrated = sum(
                amount
                for (sub, period_from), amount in billed_lines.per_period.items()
                if sub == subscription_id and (sub, period_from) not in rated_periods
            )
            usage = SubscriptionUsage(
                subscription_id,
                plan_id,
                rated.get(subscription_id, 0) + billed_unrated,
                _unbilled(open_fees, billed_lines.per_fee, now),
            )
            crossings = crossed_thresholds(
                thresholds.get(plan_id, []),
                usage.billed_cents,
                usage.lifetime_cents,
                applied.get(subscription_id, set()),
            )
            if crossings and usage.unbilled:
                due.append(ProgressiveInvoice(usage, crossings))
        return due

    def issue(self, now: datetime) -> list[InvoiceRecord]:
        """Issue (finalized at once) the invoices of every crossing; the issued records."""
        due = self.due_invoices(now)
        if not due:
            return []
        customers = {
            (i.usage.unbilled[0].organization_id, i.usage.unbilled[0].customer_id) for i in due
        }
        reader = DayReader(self.client, self.fees_table, customers_sql=customers_literal(customers))
        context = reader.context(now.date())
        context.coupons.clear()  # coupons apply to the period-end invoice
        context.progressive_billed.clear()  # these lines are what gets credited later
        records = []
        for invoice in due:
            grouping = invoice.grouping

            def one_invoice(_: Fee, grouping: str = grouping) -> str:
                return grouping

            # None when the customer was deleted: nothing to address an invoice to.
            for record in build_invoices(
                invoice.usage.unbilled, context, one_invoice, invoice_type="progressive_billing"
            ):
                # Independent of the billing date: a retry after midnight completes it.
                customer = record.customer
                stable_id = record_id(
                    "invoice", customer.organization_id, customer.customer_id, grouping
                )
                records.append((invoice, replace(record, id=stable_id)))
        if not records:
            return []
        self._write_applied(now, records)
        return write_invoices(
            self.client, now, [r for _, r in records], [r for _, r in records], context
        )

    def _open_period_fees(self) -> list[Fee]:
        # The view's stored query rather than the view: the warehouse spends about a second less
        # analysing it (warehouse/views.py).
        fees = view_query(self.client, OPEN_PERIOD_FEES)
        columns = self.client.query(
            f"SELECT {', '.join(FEE_COLUMNS)} FROM ({fees}) "
            "ORDER BY organization_id, subscription_id, fee_id",
            column_oriented=True,
        ).result_columns
        return list(map(Fee, *columns)) if columns else []

    def _thresholds(self) -> dict[UUID, list[UsageThreshold]]:
        rows = self.client.query(
            "SELECT plan_id, id, amount_cents, recurring, threshold_display_name "
            "FROM usage_thresholds FINAL WHERE is_deleted = 0"
        ).result_rows
        thresholds: dict[UUID, list[UsageThreshold]] = defaultdict(list)
        for plan_id, threshold_id, amount_cents, recurring, name in rows:
            thresholds[plan_id].append(
                UsageThreshold(threshold_id, amount_cents, bool(recurring), name)
            )
        return thresholds

    def _applied(self) -> dict[UUID, set[tuple[UUID, int]]]:
        """Thresholds applied by issued invoices (voided ones too: their usage is billed at the
        period end instead, never a second progressive time)."""
        rows = self.client.query(
            "SELECT subscription_id, usage_threshold_id, crossed_amount_cents "
            "FROM applied_usage_thresholds FINAL WHERE invoice_id IN "
            "(SELECT id FROM invoices FINAL WHERE invoice_type = 'progressive_billing' "
            "AND status != 'draft')"
        ).result_rows
        applied: dict[UUID, set[tuple[UUID, int]]] = defaultdict(set)
        for subscription_id, threshold_id, level in rows:
            applied[subscription_id].add((threshold_id, level))
        return applied

    def _rated_usage(self) -> tuple[dict[UUID, int], set[tuple[UUID, datetime]]]:
        """Arrears charge fees of closed periods per subscription, and the periods rated."""
        rows = self.client.query(
            f"SELECT subscription_id, period_from, sum(amount_cents) FROM {self.fees_table} "
            "WHERE fee_type = 'charge' AND is_true_up = 0 AND pay_in_advance = 0 "
            f"AND plan_id IN ({THRESHOLD_PLANS}) GROUP BY subscription_id, period_from"
        ).result_rows
        totals: dict[UUID, int] = defaultdict(int)
        for subscription_id, _, amount in rows:
            totals[subscription_id] += int(amount)
        return totals, {(row[0], row[1]) for row in rows}

    def _progressive_lines(self) -> BilledLines:
        rows = list(
            self.client.query(
                f"""
            SELECT f.subscription_id AS subscription_id, f.charge_id AS charge_id,
                   f.charge_filter_id AS charge_filter_id, f.grouped_by AS grouped_by,
                   f.period_from AS period_from, f.amount_cents AS amount_cents
            FROM invoice_fees AS f FINAL
            WHERE (f.organization_id, f.invoice_id, f.fees_version) IN ({PROGRESSIVE_INVOICES})
              AND f.plan_id IN ({THRESHOLD_PLANS})
            """
            ).named_results()
        )
        per_period: dict[tuple[UUID, datetime], int] = defaultdict(int)
        for row in rows:
            per_period[(row["subscription_id"], row["period_from"])] += row["amount_cents"]
        return BilledLines(progressive_billed(rows), dict(per_period))

    def _write_applied(
        self, now: datetime, records: list[tuple[ProgressiveInvoice, InvoiceRecord]]
    ) -> None:
        """Written before the invoice is finalized; they count only once it is."""
        rows = [
            [record.customer.organization_id, invoice.usage.subscription_id, c.threshold.id,
             c.crossed_amount_cents, record.id, c.threshold.display_name,
             c.threshold.amount_cents, int(c.threshold.recurring),
             invoice.usage.lifetime_cents, now]
            for invoice, record in records
            for c in invoice.crossings
        ]  # fmt: skip
        self.client.insert(
            "applied_usage_thresholds",
            rows,
            column_names=[
                "organization_id", "subscription_id", "usage_threshold_id",
                "crossed_amount_cents", "invoice_id", "threshold_display_name", "amount_cents",
                "recurring", "lifetime_usage_amount_cents", "created_at",
            ],
        )  # fmt: skip


@dataclass(frozen=True)
class BilledLines:
    per_fee: dict[UsageKey | None, int]
    per_period: dict[tuple[UUID, datetime], int]


def _unbilled(fees: list[Fee], billed: dict[UsageKey | None, int], now: datetime) -> list[Fee]:
    """Each open-period fee reduced to what no progressive invoice billed yet (a fee whose
    amount went down is left out: nothing is refunded before the period ends)."""
    unbilled = []
    for fee in fees:
        amount_cents = fee.amount_cents - billed.get(usage_key(fee), 0)
        if amount_cents <= 0:
            continue
        unbilled.append(
            replace(
                fee,
                fee_id=record_id("progressive-fee", fee.fee_id, fee.amount_cents),
                amount_cents=amount_cents,
                amount=from_cents(amount_cents, fee.currency),
                billing_date=now.astimezone(ZoneInfo(fee.timezone)).date(),
            )
        )
    return unbilled


def customers_literal(customers: Iterable[tuple[UUID, UUID]]) -> str:
    """(organization_id, customer_id) pairs as the subquery DayReader narrows its reads to."""
    pairs = ", ".join(
        f"(toUUID('{org}'), toUUID('{customer}'))" for org, customer in sorted(customers, key=str)
    )
    return (
        "SELECT tupleElement(pair, 1) AS organization_id, tupleElement(pair, 2) AS customer_id "
        f"FROM (SELECT arrayJoin([{pairs}]) AS pair)"
    )
