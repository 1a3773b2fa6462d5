"""Wallets and their credit movements.

Granted credits settle at once; purchased (paid) credits are billed on a credit invoice of their
own and stay pending until its payment succeeds (orchestration/invoices/paid_credits.py);
voided credits leave the wallet at once. The balance is settled inbound minus settled outbound
credits, the same sum invoicing uses (credits consumed by a draft invoice do not count yet;
credits a voided invoice gave back count once it is voided).
"""

from __future__ import annotations

import uuid
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from api.deps import Caller
from api.errors import FieldErrors
from api.reference import currency_exponent
from api.schemas.charge_models import decimal_amount
from api.schemas.common import dump_json
from api.schemas.subscriptions import utc
from api.schemas.wallets import (
    OngoingBalance,
    RecurringRuleInput,
    WalletInput,
    present_transaction,
    present_wallet,
)
from api.services.wallet_usage import UsageReadAhead, ongoing_usage_by_wallet
from api.storage.catalog import CatalogStore, Row, new_row, utc_now
from api.storage.lookups import latest_by_ids, rows_by_codes, rows_by_ids
from orchestration.invoices.compute import WalletBalance
from orchestration.invoices.money import to_cents
from orchestration.invoices.paid_credits import PurchasedCredits, create_credit_invoice
from orchestration.invoices.voiding import COUNTED_WALLET_TRANSACTION
from orchestration.webhooks import Notification

ZERO = Decimal(0)
CREDIT_PLACES = Decimal("0.00001")


def credits(value: str | None, field: str, errors: FieldErrors) -> Decimal:
    """Credits given as a decimal string; absent means none."""
    if value is None:
        return ZERO
    amount = decimal_amount(value)
    if amount is None:
        errors.add(field, f"invalid_{field}")
        return ZERO
    return amount


def transaction_row(
    organization_id: uuid.UUID,
    wallet: Row,
    credit_amount: Decimal,
    kind: str,
    *,
    name: str | None = None,
    metadata: Any = None,
    source: str = "manual",
    transaction_id: uuid.UUID | None = None,
) -> Row:
    """A credit movement: kind is granted, purchased or voided; source is manual, or interval
    or threshold for a recurring top-up."""
    now = utc_now()
    settled = kind != "purchased"
    row = new_row(
        organization_id,
        wallet_id=wallet["id"],
        customer_id=wallet["customer_id"],
        transaction_type="outbound" if kind == "voided" else "inbound",
        transaction_status=kind,
        status="settled" if settled else "pending",
        source=source,
        credit_amount=credit_amount,
        amount=credit_amount * wallet["rate_amount"],
        invoice_id=None,
        name=name,
        metadata=dump_json(metadata or []),
        settled_at=now if settled else None,
        failed_at=None,
    )
    if transaction_id is not None:
        row["id"] = transaction_id
    return row


def transaction_notifications(rows: list[Row], webhook_type: str) -> list[Notification]:
    """Lago's wallet_transaction.* webhooks; an update is sent once per status reached."""
    revisioned = webhook_type != "wallet_transaction.created"
    return [
        Notification(
            row["organization_id"],
            webhook_type,
            "wallet_transaction",
            row["id"],
            present_transaction(row),
            revision=row["status"] if revisioned else "",
        )  # fmt: skip
        for row in rows
    ]


def bill_purchases(
    store: CatalogStore, wallet: Row, customer: Row, movements: list[Row], actor: str
) -> None:
    """A credit invoice for each purchase among ``movements`` (already written), then the
    purchase linked to it; its credits settle when the invoice is paid."""
    for movement in movements:
        if movement["transaction_status"] != "purchased":
            continue
        purchase = PurchasedCredits(
            organization_id=wallet["organization_id"],
            customer_id=customer["id"],
            external_customer_id=customer["external_id"],
            transaction_id=movement["id"],
            credits=movement["credit_amount"],
            rate_amount=wallet["rate_amount"],
            currency=wallet["currency"],
            wallet_name=wallet["name"],
        )
        invoice = create_credit_invoice(purchase, store.client)
        movement["invoice_id"] = invoice.id
        store.write("wallet_transactions", [movement], changed_by=actor)


def balances(
    store: CatalogStore, organization_id: uuid.UUID, wallet_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[Decimal, Decimal]]:
    """(credits balance, consumed credits) per wallet, from settled movements."""
    if not wallet_ids:
        return {}
    # Consumed credits are net of what voided invoices gave back (granted, tied to an invoice).
    result = store.client.query(
        "SELECT wallet_id,"
        " sumIf(credit_amount, transaction_type = 'inbound')"
        " - sumIf(credit_amount, transaction_type = 'outbound'),"
        " sumIf(credit_amount, transaction_type = 'outbound' AND transaction_status = 'invoiced')"
        " - sumIf(credit_amount, transaction_type = 'inbound' AND transaction_status = 'granted'"
        "         AND invoice_id IS NOT NULL)"
        " FROM wallet_transactions FINAL WHERE organization_id = {org:UUID} AND is_deleted = 0"
        f" AND status = 'settled' AND {COUNTED_WALLET_TRANSACTION}"
        " AND wallet_id IN {ids:Array(UUID)} GROUP BY wallet_id",
        parameters={"org": organization_id, "ids": wallet_ids},
    )
    return {row[0]: (Decimal(row[1]), Decimal(row[2])) for row in result.result_rows}


def present_wallets(
    store: CatalogStore,
    org: uuid.UUID,
    rows: list[Row],
    read_ahead: UsageReadAhead | None = None,
) -> list[dict[str, Any]]:
    """The wallets as the API shows them, their ongoing balances included (their customers'
    current usage read now, or taken from ``read_ahead``)."""
    customers = latest_by_ids(store, "customers", org, [row["customer_id"] for row in rows])
    metric_ids = [i for row in rows for i in row["applies_to_billable_metric_ids"]]
    metrics = rows_by_ids(store, "billable_metrics", org, metric_ids)
    sums = balances(store, org, [row["id"] for row in rows])
    active = [wallet_balance(row, sums) for row in rows if row["status"] == "active"]
    usage = ongoing_usage_by_wallet(
        store, org, customers, active, {row["id"]: row["customer_id"] for row in rows}, read_ahead
    )
    presented = []
    for row in rows:
        balance, consumed = sums.get(row["id"], (ZERO, ZERO))
        balance_cents = credits_to_cents(balance, row)
        usage_cents = usage.get(row["id"], 0)
        presented.append(
            present_wallet(
                row,
                customers.get(row["customer_id"]),
                [metrics[i]["code"] for i in row["applies_to_billable_metric_ids"] if i in metrics],
                balance,
                consumed,
                balance_cents,
                ongoing_balance(row, balance_cents, usage_cents),
            )
        )
    return presented


def wallet_balance(row: Row, sums: dict[uuid.UUID, tuple[Decimal, Decimal]]) -> WalletBalance:
    """The wallet as the invoice's wallet step sees it: its balance, rank and limits."""
    return WalletBalance(
        row["id"],
        sums.get(row["id"], (ZERO, ZERO))[0],
        row["rate_amount"],
        row["priority"],
        row["created_at"],
        frozenset(row["applies_to_fee_types"]),
        frozenset(row["applies_to_billable_metric_ids"]),
    )


def ongoing_balance(wallet: Row, balance_cents: int, usage_cents: int) -> OngoingBalance:
    return OngoingBalance(
        usage_cents,
        cents_to_credits(usage_cents, wallet),
        balance_cents - usage_cents,
        cents_to_credits(balance_cents - usage_cents, wallet),
    )


def credits_to_cents(credits: Decimal, wallet: Row) -> int:
    """The wallet's credits as money in minor units, rounded once, half-up."""
    return to_cents(credits * wallet["rate_amount"], wallet["currency"])


def cents_to_credits(cents: int, wallet: Row, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Money in minor units as the wallet's credits, kept to Lago's 5 decimals."""
    money = Decimal(cents).scaleb(-currency_exponent(wallet["currency"]))
    return (money / wallet["rate_amount"]).quantize(CREDIT_PLACES, rounding)


def paid_top_up_limit_error(wallet: Row, paid: Decimal) -> str | None:
    """Lago's bounds on a purchase: the money of the paid credits, rounded to the currency's
    minor unit, against the wallet's paid_top_up_min/max_amount_cents."""
    if paid <= 0:
        return None
    cents = credits_to_cents(paid, wallet)
    low, high = wallet["paid_top_up_min_amount_cents"], wallet["paid_top_up_max_amount_cents"]
    if low is not None and cents < low:
        return "amount_below_minimum"
    if high is not None and cents > high:
        return "amount_above_maximum"
    return None


def check_paid_top_up_limits(
    wallet: Row, paid: Decimal, errors: FieldErrors, *, ignored: bool | None
) -> None:
    """A purchase by hand (wallet creation, transaction) outside the wallet's bounds is refused,
    unless the request says to ignore them."""
    if not ignored and (error := paid_top_up_limit_error(wallet, paid)):
        errors.add("paid_credits", error)


def raised_to_minimum_top_up(wallet: Row, paid: Decimal) -> Decimal:
    """A recurring rule's purchase, raised to the wallet's minimum when below it (as Lago's
    rules do unless they ignore the limits); the maximum does not cut it."""
    if paid_top_up_limit_error(wallet, paid) != "amount_below_minimum":
        return paid
    # Rounded up, so that the credits' money reaches the minimum.
    return cents_to_credits(wallet["paid_top_up_min_amount_cents"], wallet, ROUND_CEILING)


def valid_rule(rule: RecurringRuleInput) -> bool:
    """Lago's rule shapes: an interval rule names its interval, a threshold rule its threshold,
    a target rule its target balance; credits are decimal strings."""
    amounts = (
        rule.paid_credits,
        rule.granted_credits,
        rule.threshold_credits,
        rule.target_ongoing_balance,
    )
    if any(value is not None and decimal_amount(value) is None for value in amounts):
        return False
    if rule.trigger is None or (rule.trigger == "interval" and rule.interval is None):
        return False
    if rule.trigger == "threshold" and rule.threshold_credits is None:
        return False
    return not (rule.method == "target" and rule.target_ongoing_balance is None)


def apply_wallet_fields(
    store: CatalogStore, caller: Caller, row: Row, body: WalletInput, errors: FieldErrors
) -> None:
    """Copy the editable fields of the request onto the wallet row."""
    sent = body.model_fields_set
    for field in ("name", "code", "priority", "invoice_requires_successful_payment"):
        if field in sent and getattr(body, field) is not None:
            row[field] = getattr(body, field)
    row["invoice_requires_successful_payment"] = int(row["invoice_requires_successful_payment"])
    for field in ("paid_top_up_min_amount_cents", "paid_top_up_max_amount_cents"):
        if field in sent:
            row[field] = getattr(body, field)
    if "expiration_at" in sent:
        row["expiration_at"] = utc(body.expiration_at)
        if row["expiration_at"] is not None and row["expiration_at"] <= utc_now():
            errors.add("expiration_at", "invalid_date")
    if body.metadata is not None:
        row["metadata"] = dump_json(body.metadata)
    if body.recurring_transaction_rules is not None:
        if not all(valid_rule(rule) for rule in body.recurring_transaction_rules):
            errors.add("recurring_transaction_rules", "invalid_recurring_rule")
        row["recurring_transaction_rules"] = dump_json(
            [
                {**rule.model_dump(mode="json"), "lago_id": rule.lago_id or str(uuid.uuid4())}
                for rule in body.recurring_transaction_rules
            ]
        )
    if body.applies_to is not None:
        row["applies_to_fee_types"] = list(body.applies_to.fee_types or [])
        codes = body.applies_to.billable_metric_codes or []
        metrics = rows_by_codes(store, "billable_metrics", caller.organization_id, codes)
        if any(code not in metrics for code in codes):
            errors.add("applies_to.billable_metric_codes", "value_is_invalid")
        row["applies_to_billable_metric_ids"] = [metrics[c]["id"] for c in codes if c in metrics]
    low, high = row["paid_top_up_min_amount_cents"], row["paid_top_up_max_amount_cents"]
    if low is not None and high is not None and low > high:
        errors.add("paid_top_up_max_amount_cents", "value_is_invalid")
