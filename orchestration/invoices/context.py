"""Everything one billing day needs, read set-based: a handful of queries for all customers.

Ledger rows (coupon consumptions, wallet outbound transactions, credit note consumptions) only
count once their invoice is finalized: rows written for an invoice that is still a draft (a run
that crashed between the ledgers and the finalized invoice row) are ignored, so the retry
recomputes the same amounts and rewrites the same rows. Voiding gives back what an invoice
consumed (see ``voiding``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from clickhouse_connect.driver.client import Client

from orchestration.invoices.compute import AppliedCoupon, CreditNoteBalance, Tax, WalletBalance
from orchestration.invoices.voiding import COUNTED_WALLET_TRANSACTION, UNCOUNTED_INVOICES

CustomerKey = tuple[UUID, UUID]  # (organization_id, customer_id)
# A usage fee of one period: what a progressive invoice billed part of and the period-end fee
# credits back (subscription, charge, filter, group, period start).
UsageKey = tuple[UUID | None, UUID | None, UUID | None, tuple[tuple[str, str], ...], datetime]

FEE_COLUMNS = [
    "organization_id", "fee_id", "fee_type", "is_true_up", "customer_id", "external_customer_id",
    "subscription_id", "external_subscription_id", "plan_id", "charge_id", "charge_filter_id",
    "billable_metric_id", "billable_metric_code", "grouped_by", "invoice_display_name",
    "pay_in_advance", "source_transaction_id", "period_from", "period_to", "billing_date",
    "timezone", "currency", "units", "events_count", "precise_unit_amount", "amount",
    "amount_cents", "tax_codes",
]  # fmt: skip


@dataclass(frozen=True)
class Fee:
    organization_id: UUID
    fee_id: UUID
    fee_type: str
    is_true_up: int
    customer_id: UUID
    external_customer_id: str
    subscription_id: UUID | None
    external_subscription_id: str
    plan_id: UUID | None
    charge_id: UUID | None
    charge_filter_id: UUID | None
    billable_metric_id: UUID | None
    billable_metric_code: str | None
    grouped_by: dict[str, str]
    invoice_display_name: str
    pay_in_advance: int
    source_transaction_id: str | None
    period_from: datetime
    period_to: datetime
    billing_date: date
    timezone: str
    currency: str
    units: Decimal
    events_count: int
    precise_unit_amount: Decimal
    amount: Decimal
    amount_cents: int
    tax_codes: list[str]
    add_on_id: UUID | None = None


def usage_key(fee: Fee) -> UsageKey | None:
    """The key of an arrears charge fee (None for every other fee: nothing to credit)."""
    if fee.fee_type != "charge" or fee.is_true_up or fee.pay_in_advance:
        return None
    return (
        fee.subscription_id,
        fee.charge_id,
        fee.charge_filter_id,
        tuple(sorted(fee.grouped_by.items())),
        fee.period_from,
    )


@dataclass(frozen=True)
class CustomerBilling:
    organization_id: UUID
    customer_id: UUID
    external_id: str
    name: str | None
    email: str | None
    net_payment_term: int
    grace_period_days: int
    document_numbering: str  # per_customer | per_organization
    document_number_prefix: str
    payment_provider: str | None
    provider_customer_id: str | None


@dataclass(frozen=True)
class ExistingInvoice:
    id: UUID
    status: str
    fees_version: int


@dataclass(frozen=True)
class CouponState:
    coupon_id: UUID
    currency: str | None
    applied: AppliedCoupon


@dataclass(frozen=True)
class WalletState:
    currency: str
    wallet: WalletBalance


@dataclass(frozen=True)
class CreditNoteState:
    currency: str
    note: CreditNoteBalance


@dataclass
class DayContext:
    customers: dict[CustomerKey, CustomerBilling] = field(default_factory=dict)
    taxes: dict[tuple[UUID, str], Tax] = field(default_factory=dict)
    coupons: dict[CustomerKey, list[CouponState]] = field(default_factory=dict)
    wallets: dict[CustomerKey, list[WalletState]] = field(default_factory=dict)
    credit_notes: dict[CustomerKey, list[CreditNoteState]] = field(default_factory=dict)
    existing: dict[UUID, ExistingInvoice] = field(default_factory=dict)
    numbers: dict[UUID, tuple[int, str]] = field(default_factory=dict)  # invoice -> (seq, number)
    last_sequence: dict[tuple[UUID, str], int] = field(default_factory=dict)  # (org, scope)
    # Usage already billed by issued progressive-billing invoices, credited on the period's fee.
    progressive_billed: dict[UsageKey | None, int] = field(default_factory=dict)


class DayReader:
    """The queries of one billing day. ``fees_table`` is the rating mart (``fct_fees``)."""

    def __init__(
        self,
        client: Client,
        fees_table: str = "fct_fees",
        customers_sql: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        """``customers_sql`` (columns organization_id, customer_id) replaces the day's customers,
        for invoices that do not come from the rating mart (one-off invoices). ``parameters`` are
        bound to the ``{name:Type}`` placeholders of ``fees_table`` (a view's stored query)."""
        self.client = client
        self.fees_table = fees_table
        self.customers = customers_sql or self.DAY_CUSTOMERS
        self.parameters = parameters

    def _rows(self, sql: str, day: date) -> list[dict[str, Any]]:
        sql = sql.replace("{fees}", self.fees_table).replace("{day}", _day_literal(day))
        return list(self.client.query(sql, parameters=self.parameters).named_results())

    # Customers that have fees on the day, as a subquery every other query reuses.
    DAY_CUSTOMERS = (
        "SELECT DISTINCT organization_id, customer_id FROM {fees} "
        "WHERE billing_date = {day} AND invoiceable = 1"
    )

    def has_fees(self, day: date) -> bool:
        rows = self._rows(
            "SELECT count() AS n FROM {fees} WHERE billing_date = {day} AND invoiceable = 1", day
        )
        return bool(rows[0]["n"])

    def fees(self, day: date) -> list[Fee]:
        """The day's invoiceable fees that no finalized invoice holds yet."""
        return self._uninvoiced_fees("billing_date = {day}", day)

    def pending_fees(self) -> list[Fee]:
        """Every invoiceable fee of the fees table that no finalized invoice holds yet."""
        return self._uninvoiced_fees("1", date.min)

    def customer_fees(self, horizon: date) -> list[Fee]:
        """The customers' invoiceable fees up to ``horizon`` that no finalized invoice holds."""
        return self._uninvoiced_fees(
            f"billing_date <= {{day}} AND (organization_id, customer_id) IN ({self.customers})",
            horizon,
        )

    def _uninvoiced_fees(self, where: str, day: date) -> list[Fee]:
        sql = f"""
            SELECT {", ".join(FEE_COLUMNS)} FROM {{fees}}
            WHERE {where} AND invoiceable = 1
              AND (organization_id, fee_id) NOT IN (
                SELECT organization_id, id FROM invoice_fees
                WHERE (organization_id, invoice_id, fees_version) IN (
                    SELECT organization_id, id, fees_version FROM invoices FINAL
                    WHERE status != 'draft'
                )
              )
            ORDER BY organization_id, customer_id, fee_id
            """
        sql = sql.replace("{fees}", self.fees_table).replace("{day}", _day_literal(day))
        # Column-oriented and positional: the fee list is the one large read of a billing day.
        columns = self.client.query(
            sql, parameters=self.parameters, column_oriented=True
        ).result_columns
        return list(map(Fee, *columns)) if columns else []

    def context(self, day: date) -> DayContext:
        context = DayContext()
        self._customers(day, context)
        self._taxes(day, context)
        self._coupons(day, context)
        self._wallets(day, context)
        self._credit_notes(day, context)
        self._existing_invoices(day, context)
        self._numbers(day, context)
        self._progressive_billed(day, context)
        return context

    def _customers(self, day: date, context: DayContext) -> None:
        rows = self._rows(
            f"""
            SELECT c.organization_id AS organization_id, c.id AS customer_id,
                   c.external_id AS external_id, c.name AS name, c.email AS email,
                   toUInt32(ifNull(c.net_payment_term, o.net_payment_term)) AS net_payment_term,
                   toUInt32(ifNull(c.invoice_grace_period, o.invoice_grace_period))
                       AS grace_period_days,
                   toString(o.document_numbering) AS document_numbering,
                   if(o.document_number_prefix != '', o.document_number_prefix,
                      concat(upper(substring(o.name, 1, 3)), '-',
                             upper(right(replaceAll(toString(o.organization_id), '-', ''), 4))))
                       AS document_number_prefix,
                   c.payment_provider AS payment_provider,
                   c.provider_customer_id AS provider_customer_id
            FROM customers AS c FINAL
            INNER JOIN (SELECT * FROM organizations FINAL) AS o
                ON o.organization_id = c.organization_id
            WHERE (c.organization_id, c.id) IN ({self.customers})
            """,
            day,
        )
        for row in rows:
            customer = CustomerBilling(**row)
            context.customers[(customer.organization_id, customer.customer_id)] = customer

    def _taxes(self, day: date, context: DayContext) -> None:
        rows = self._rows(
            f"""
            SELECT organization_id, code, name, rate FROM taxes FINAL
            WHERE organization_id IN (SELECT organization_id FROM ({self.customers}))
            """,
            day,
        )
        for row in rows:
            context.taxes[(row["organization_id"], row["code"])] = Tax(
                row["code"], row["rate"], row["name"]
            )

    def _coupons(self, day: date, context: DayContext) -> None:
        rows = self._rows(
            f"""
            SELECT ac.organization_id AS organization_id, ac.customer_id AS customer_id,
                   ac.id AS id, ac.coupon_id AS coupon_id, ac.created_at AS applied_at,
                   c.coupon_type AS coupon_type, ac.frequency AS frequency,
                   ifNull(ac.amount_cents, ifNull(c.amount_cents, 0)) AS amount_cents,
                   ifNull(ac.amount_currency, c.amount_currency) AS currency,
                   ifNull(ac.percentage_rate, ifNull(c.percentage_rate, 0)) AS percentage_rate,
                   ifNull(ac.frequency_duration, c.frequency_duration) AS frequency_duration,
                   if(c.limited_billable_metrics = 1, c.billable_metric_ids, [])
                       AS billable_metric_ids,
                   if(c.limited_plans = 1, c.plan_ids, []) AS plan_ids,
                   ifNull(used.consumed_cents, 0) AS consumed_cents,
                   ifNull(used.uses, 0) AS uses
            FROM applied_coupons AS ac FINAL
            INNER JOIN (SELECT * FROM coupons FINAL) AS c
                ON c.organization_id = ac.organization_id AND c.id = ac.coupon_id
            LEFT JOIN (
                SELECT organization_id, applied_coupon_id, sum(amount_cents) AS consumed_cents,
                       count() AS uses
                FROM coupon_consumptions FINAL
                WHERE invoice_id NOT IN ({UNCOUNTED_INVOICES})
                GROUP BY organization_id, applied_coupon_id
            ) AS used
                ON used.organization_id = ac.organization_id AND used.applied_coupon_id = ac.id
            WHERE (ac.organization_id, ac.customer_id) IN ({self.customers})
              AND ac.status = 'active' AND toDate(ac.created_at) <= {{day}}
            """,
            day,
        )
        for row in rows:
            state = _coupon_state(row)
            if state is not None:
                key = (row["organization_id"], row["customer_id"])
                context.coupons.setdefault(key, []).append(state)

    def _wallets(self, day: date, context: DayContext) -> None:
        rows = self._rows(
            f"""
            SELECT w.organization_id AS organization_id, w.customer_id AS customer_id,
                   w.id AS wallet_id, w.currency AS currency, w.rate_amount AS rate_amount,
                   w.priority AS priority, w.created_at AS created_at,
                   w.applies_to_fee_types AS fee_types,
                   w.applies_to_billable_metric_ids AS billable_metric_ids,
                   ifNull(t.balance, toDecimal128(0, 12)) AS balance
            FROM wallets AS w FINAL
            LEFT JOIN (
                SELECT organization_id, wallet_id,
                       sumIf(credit_amount, transaction_type = 'inbound')
                         - sumIf(credit_amount, transaction_type = 'outbound') AS balance
                FROM wallet_transactions FINAL
                WHERE status = 'settled' AND {COUNTED_WALLET_TRANSACTION}
                GROUP BY organization_id, wallet_id
            ) AS t ON t.organization_id = w.organization_id AND t.wallet_id = w.id
            WHERE (w.organization_id, w.customer_id) IN ({self.customers})
              AND w.status = 'active' AND toDate(w.created_at) <= {{day}}
              -- Expired by the day's start (UTC): terminated, or soon to be by the hourly job.
              AND (w.expiration_at IS NULL OR w.expiration_at > {{day}})
            """,
            day,
        )
        for row in rows:
            if row["balance"] <= 0:
                continue
            wallet = WalletBalance(
                wallet_id=row["wallet_id"],
                balance_credits=row["balance"],
                rate_amount=row["rate_amount"],
                priority=row["priority"],
                created_at=row["created_at"],
                fee_types=frozenset(row["fee_types"]),
                billable_metric_ids=frozenset(row["billable_metric_ids"]),
            )
            key = (row["organization_id"], row["customer_id"])
            context.wallets.setdefault(key, []).append(WalletState(row["currency"], wallet))

    def _credit_notes(self, day: date, context: DayContext) -> None:
        rows = self._rows(
            f"""
            SELECT n.organization_id AS organization_id, n.customer_id AS customer_id,
                   n.id AS credit_note_id, n.currency AS currency, n.created_at AS created_at,
                   n.credit_amount_cents - ifNull(u.used, 0) AS remaining_cents
            FROM credit_notes AS n FINAL
            LEFT JOIN (
                SELECT organization_id, credit_note_id, sum(amount_cents) AS used
                FROM credit_note_consumptions FINAL
                WHERE invoice_id NOT IN ({UNCOUNTED_INVOICES})
                GROUP BY organization_id, credit_note_id
            ) AS u ON u.organization_id = n.organization_id AND u.credit_note_id = n.id
            WHERE (n.organization_id, n.customer_id) IN ({self.customers})
              AND ifNull(n.credit_status, '') = 'available' AND remaining_cents > 0
            """,
            day,
        )
        for row in rows:
            note = CreditNoteBalance(
                row["credit_note_id"], row["remaining_cents"], row["created_at"]
            )
            key = (row["organization_id"], row["customer_id"])
            context.credit_notes.setdefault(key, []).append(CreditNoteState(row["currency"], note))

    def _existing_invoices(self, day: date, context: DayContext) -> None:
        rows = self._rows(
            "SELECT id, status, fees_version FROM invoices FINAL WHERE billing_date = {day}", day
        )
        for row in rows:
            context.existing[row["id"]] = ExistingInvoice(**row)

    def _numbers(self, day: date, context: DayContext) -> None:
        rows = self._rows(
            """
            SELECT invoice_id, sequential_id, number FROM invoice_numbers FINAL
            WHERE invoice_id IN (SELECT id FROM invoices FINAL WHERE billing_date = {day})
            """,
            day,
        )
        context.numbers = {row["invoice_id"]: (row["sequential_id"], row["number"]) for row in rows}
        rows = self._rows(
            f"""
            SELECT organization_id, scope, max(sequential_id) AS last FROM invoice_numbers FINAL
            WHERE organization_id IN (SELECT organization_id FROM ({self.customers}))
            GROUP BY organization_id, scope
            """,
            day,
        )
        last: dict[tuple[UUID, str], int] = defaultdict(int)
        for row in rows:
            last[(row["organization_id"], row["scope"])] = row["last"]
        context.last_sequence = last

    def _progressive_billed(self, day: date, context: DayContext) -> None:
        rows = self._rows(
            f"""
            SELECT f.subscription_id AS subscription_id, f.charge_id AS charge_id,
                   f.charge_filter_id AS charge_filter_id, f.grouped_by AS grouped_by,
                   f.period_from AS period_from, f.amount_cents AS amount_cents
            FROM invoice_fees AS f FINAL
            WHERE (f.organization_id, f.invoice_id, f.fees_version) IN (
                {PROGRESSIVE_INVOICES}
                  AND (organization_id, customer_id) IN ({self.customers})
            )
            """,
            day,
        )
        context.progressive_billed = progressive_billed(rows)


# Issued progressive-billing invoices: a voided one bills nothing, so it credits nothing.
PROGRESSIVE_INVOICES = (
    "SELECT organization_id, id, fees_version FROM invoices FINAL "
    "WHERE invoice_type = 'progressive_billing' AND status = 'finalized'"
)


def progressive_billed(rows: list[dict[str, Any]]) -> dict[UsageKey | None, int]:
    """Progressive-billing lines summed per usage fee of a period."""
    billed: dict[UsageKey | None, int] = defaultdict(int)
    for row in rows:
        key = (
            row["subscription_id"],
            row["charge_id"],
            row["charge_filter_id"],
            tuple(sorted(row["grouped_by"].items())),
            row["period_from"],
        )
        billed[key] += row["amount_cents"]
    return dict(billed)


def _day_literal(day: date) -> str:
    return f"toDate('{day:%Y-%m-%d}')"


def _coupon_state(row: dict[str, Any]) -> CouponState | None:
    """The coupon with its balances carried over from earlier invoices; None once used up."""
    frequency = row["frequency"]
    remaining_amount = None
    remaining_frequency = None
    if frequency == "once":
        if row["coupon_type"] == "percentage" and row["uses"] > 0:
            return None
        remaining_amount = row["amount_cents"] - row["consumed_cents"]
        if row["coupon_type"] == "fixed_amount" and remaining_amount <= 0:
            return None
    elif frequency == "recurring":
        remaining_frequency = (row["frequency_duration"] or 0) - row["uses"]
        if remaining_frequency <= 0:
            return None
    applied = AppliedCoupon(
        id=row["id"],
        coupon_type=row["coupon_type"],
        frequency=frequency,
        applied_at=row["applied_at"],
        amount_cents=row["amount_cents"],
        percentage_rate=row["percentage_rate"],
        remaining_amount_cents=remaining_amount,
        remaining_frequency=remaining_frequency,
        billable_metric_ids=frozenset(row["billable_metric_ids"]),
        plan_ids=frozenset(row["plan_ids"]),
    )
    return CouponState(row["coupon_id"], row["currency"], applied)
