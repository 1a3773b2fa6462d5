"""Coupons ``{"coupon": {...}}`` and coupons applied to customers ``{"applied_coupon": {...}}``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from api.schemas.common import Body, Cents, Code, LongText, RequiredText, ShortText, as_float, iso
from api.storage.catalog import Row

Percentage = Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False, decimal_places=12)]
Periods = Annotated[int, Field(ge=1, le=10_000)]
Frequency = Literal["once", "recurring", "forever"]


class LimitationInput(Body):
    plan_codes: list[RequiredText] | None = None
    billable_metric_codes: list[RequiredText] | None = None


class CouponInput(Body):
    name: RequiredText | None = None
    code: Code | None = None
    description: LongText | None = None
    coupon_type: Literal["fixed_amount", "percentage"] | None = None
    amount_cents: Cents | None = None
    amount_currency: ShortText | None = None
    percentage_rate: Percentage | None = None
    frequency: Frequency | None = None
    frequency_duration: Periods | None = None
    reusable: bool | None = None
    expiration: Literal["no_expiration", "time_limit"] | None = None
    expiration_at: datetime | None = None
    applies_to: LimitationInput | None = None


class CouponEnvelope(Body):
    coupon: CouponInput


class AppliedCouponInput(Body):
    external_customer_id: RequiredText | None = None
    coupon_code: RequiredText | None = None
    amount_cents: Cents | None = None
    amount_currency: ShortText | None = None
    percentage_rate: Percentage | None = None
    frequency: Frequency | None = None
    frequency_duration: Periods | None = None


class AppliedCouponEnvelope(Body):
    applied_coupon: AppliedCouponInput


def present_coupon(row: Row, plan_codes: list[str], metric_codes: list[str]) -> dict[str, Any]:
    return {
        "lago_id": str(row["id"]),
        "name": row["name"],
        "code": row["code"],
        "description": row["description"],
        "coupon_type": row["coupon_type"],
        "amount_cents": row["amount_cents"],
        "amount_currency": row["amount_currency"],
        "percentage_rate": as_float(row["percentage_rate"]),
        "frequency": row["frequency"],
        "frequency_duration": row["frequency_duration"],
        "reusable": bool(row["reusable"]),
        "limited_plans": bool(row["limited_plans"]),
        "plan_codes": plan_codes,
        "limited_billable_metrics": bool(row["limited_billable_metrics"]),
        "billable_metric_codes": metric_codes,
        "expiration": row["expiration"],
        "expiration_at": iso(row["expiration_at"]),
        "terminated_at": iso(row["terminated_at"]),
        "created_at": iso(row["created_at"]),
    }


def present_applied_coupon(
    row: Row, coupon: Row | None, customer: Row | None, consumed: tuple[Any, Any, Any] | None
) -> dict[str, Any]:
    """``consumed``: (remaining amount, remaining periods, terminated) after the last invoice."""
    remaining_amount, remaining_periods, used_up = consumed or (None, None, 0)
    fixed_once = row["frequency"] == "once" and row["amount_cents"] is not None
    return {
        "lago_id": str(row["id"]),
        "lago_coupon_id": str(row["coupon_id"]),
        "coupon_code": coupon["code"] if coupon else None,
        "coupon_name": coupon["name"] if coupon else None,
        "lago_customer_id": str(row["customer_id"]),
        "external_customer_id": customer["external_id"] if customer else None,
        "status": "terminated" if used_up else row["status"],
        "amount_cents": row["amount_cents"],
        "amount_cents_remaining": (
            remaining_amount if remaining_amount is not None else row["amount_cents"]
        )
        if fixed_once
        else None,
        "amount_currency": row["amount_currency"],
        "percentage_rate": as_float(row["percentage_rate"]),
        "frequency": row["frequency"],
        "frequency_duration": row["frequency_duration"],
        "frequency_duration_remaining": remaining_periods
        if remaining_periods is not None
        else row["frequency_duration"],
        "expiration_at": iso(coupon["expiration_at"]) if coupon else None,
        "created_at": iso(row["created_at"]),
        "terminated_at": iso(row["terminated_at"]),
    }
