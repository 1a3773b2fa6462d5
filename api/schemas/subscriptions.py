"""Subscriptions: ``{"subscription": {...}}``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from api.errors import FieldErrors
from api.schemas.common import Body, Cents, LongText, RequiredText, ShortText, iso
from api.schemas.plans import ChargeInput, MinimumCommitmentInput, TrialDays, UsageThresholdInput
from api.storage.catalog import Row

BillingTime = Literal["calendar", "anniversary"]
# DateTime64(3) holds 1900-2299; refuse what it cannot store rather than fail on insert.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class PlanOverridesInput(Body):
    """What a subscription may change of its plan (Lago's plan_overrides)."""

    name: RequiredText | None = None
    invoice_display_name: ShortText | None = None
    description: LongText | None = None
    amount_cents: Cents | None = None
    amount_currency: ShortText | None = None
    trial_period: TrialDays | None = None
    charges: Annotated[list[ChargeInput], Field(max_length=200)] | None = None
    minimum_commitment: MinimumCommitmentInput | None = None
    usage_thresholds: Annotated[list[UsageThresholdInput], Field(max_length=100)] | None = None
    tax_codes: list[RequiredText] | None = None


class SubscriptionInput(Body):
    external_customer_id: RequiredText | None = None
    plan_code: RequiredText | None = None
    name: ShortText | None = None
    external_id: RequiredText | None = None
    subscription_at: datetime | None = None
    billing_time: BillingTime | None = None
    ending_at: datetime | None = None
    plan_overrides: PlanOverridesInput | None = None

    def field_errors(self) -> FieldErrors:
        errors = FieldErrors()
        for name in ("subscription_at", "ending_at"):
            moment = utc(getattr(self, name))
            if moment is not None and not EARLIEST <= moment < LATEST:
                errors.add(name, "invalid_date")
        return errors


class SubscriptionEnvelope(Body):
    subscription: SubscriptionInput


def utc(moment: datetime | None) -> datetime | None:
    """Naive timestamps are UTC; stored with millisecond precision."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def present_subscription(
    row: Row,
    *,
    customer: Row | None,
    plan_code: str | None,
    plan: Row | None,
    previous_plan_code: str | None,
    next_plan_code: str | None,
    downgrade_plan_date: datetime | None,
    period: tuple[datetime, datetime] | None,
) -> dict[str, Any]:
    return {
        "lago_id": str(row["id"]),
        "external_id": row["external_id"],
        "lago_customer_id": str(row["customer_id"]),
        "external_customer_id": customer["external_id"] if customer else None,
        "name": row["name"],
        "plan_code": plan_code,
        "plan_amount_cents": int(plan["amount_cents"]) if plan else None,
        "plan_amount_currency": plan["amount_currency"] if plan else None,
        "status": row["status"],
        "billing_time": row["billing_time"],
        "subscription_at": iso(row["subscription_at"]),
        "started_at": iso(row["started_at"]),
        "trial_ended_at": iso(row["trial_ended_at"]),
        "ending_at": iso(row["ending_at"]),
        "terminated_at": iso(row["terminated_at"]),
        "canceled_at": iso(row["canceled_at"]),
        "created_at": iso(row["created_at"]),
        "previous_plan_code": previous_plan_code,
        "next_plan_code": next_plan_code,
        "downgrade_plan_date": downgrade_plan_date.date().isoformat()
        if downgrade_plan_date
        else None,
        "current_billing_period_started_at": iso(period[0]) if period else None,
        "current_billing_period_ending_at": iso(period[1]) if period else None,
        "on_termination_credit_note": row["on_termination_credit_note"],
        "on_termination_invoice": row["on_termination_invoice"],
    }
