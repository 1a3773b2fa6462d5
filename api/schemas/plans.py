"""Plans with charges, filters, minimum commitment and usage thresholds: ``{"plan": {...}}``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from api.schemas.charge_models import CHARGE_MODELS
from api.schemas.common import Body, Cents, Code, LongText, RequiredText, ShortText, iso, load_json
from api.storage.catalog import Row

Interval = Literal["weekly", "monthly", "quarterly", "semiannual", "yearly"]
ChargeModel = Literal[CHARGE_MODELS]  # type: ignore[valid-type]
TrialDays = Annotated[Decimal, Field(ge=0, le=36_500, allow_inf_nan=False, decimal_places=6)]
# Yearly plan amounts, to tell an upgrade from a downgrade.
PERIODS_PER_YEAR = {"weekly": 52, "monthly": 12, "quarterly": 4, "semiannual": 2, "yearly": 1}
ALL_FILTER_VALUES = "__ALL_FILTER_VALUES__"


class ChargeFilterInput(Body):
    # A filter keeps its id when its values change only if the request names it.
    id: ShortText | None = None
    invoice_display_name: ShortText | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    values: Annotated[
        dict[RequiredText, Annotated[list[RequiredText], Field(min_length=1)]], Field(min_length=1)
    ]


class ChargeInput(Body):
    id: ShortText | None = None
    billable_metric_id: ShortText | None = None
    code: ShortText | None = None
    charge_model: ChargeModel | None = None
    pay_in_advance: bool | None = None
    prorated: bool | None = None
    invoiceable: bool | None = None
    regroup_paid_fees: Literal["invoice"] | None = None
    invoice_display_name: ShortText | None = None
    min_amount_cents: Cents | None = None
    properties: dict[str, Any] | None = None
    filters: Annotated[list[ChargeFilterInput], Field(max_length=200)] | None = None
    tax_codes: list[RequiredText] | None = None


class ChargeFilterEnvelope(Body):
    filter: ChargeFilterInput


class ChargeFilterChangeInput(Body):
    invoice_display_name: ShortText | None = None
    properties: dict[str, Any] | None = None
    values: dict[RequiredText, Annotated[list[RequiredText], Field(min_length=1)]] | None = None


class ChargeFilterChangeEnvelope(Body):
    filter: ChargeFilterChangeInput


class ChargeEnvelope(Body):
    charge: ChargeInput


class MinimumCommitmentInput(Body):
    amount_cents: Cents | None = None
    invoice_display_name: ShortText | None = None
    tax_codes: list[RequiredText] | None = None


class UsageThresholdInput(Body):
    id: ShortText | None = None
    threshold_display_name: ShortText | None = None
    amount_cents: Cents | None = None
    recurring: bool = False


class PlanInput(Body):
    name: RequiredText | None = None
    invoice_display_name: ShortText | None = None
    code: Code | None = None
    interval: Interval | None = None
    description: LongText | None = None
    amount_cents: Cents | None = None
    amount_currency: ShortText | None = None
    trial_period: TrialDays | None = None
    pay_in_advance: bool | None = None
    bill_charges_monthly: bool | None = None
    charges: Annotated[list[ChargeInput], Field(max_length=200)] | None = None
    minimum_commitment: MinimumCommitmentInput | None = None
    usage_thresholds: Annotated[list[UsageThresholdInput], Field(max_length=100)] | None = None
    tax_codes: list[RequiredText] | None = None
    metadata: dict[RequiredText, ShortText | None] | None = None


class PlanEnvelope(Body):
    plan: PlanInput


@dataclass
class PlanTree:
    """A plan and its children as stored: what one request writes or one response shows."""

    plan: Row
    charges: list[Row] = field(default_factory=list)
    filters: list[Row] = field(default_factory=list)
    thresholds: list[Row] = field(default_factory=list)


def yearly_amount_cents(plan: Row) -> int:
    return int(plan["amount_cents"]) * PERIODS_PER_YEAR[plan["interval"]]


def present_charge(
    charge: Row,
    filters: list[Row],
    metrics: Mapping[uuid.UUID, Row],
    taxes: list[dict[str, Any]],
) -> dict[str, Any]:
    metric = metrics.get(charge["billable_metric_id"])
    return {
        "lago_id": str(charge["id"]),
        "lago_billable_metric_id": str(charge["billable_metric_id"]),
        "billable_metric_code": metric["code"] if metric else None,
        "lago_parent_id": str(charge["parent_id"]) if charge["parent_id"] else None,
        "code": charge["code"],
        "created_at": iso(charge["created_at"]),
        "charge_model": charge["charge_model"],
        "pay_in_advance": bool(charge["pay_in_advance"]),
        "invoiceable": bool(charge["invoiceable"]),
        "regroup_paid_fees": charge["regroup_paid_fees"],
        "prorated": bool(charge["prorated"]),
        "invoice_display_name": charge["invoice_display_name"],
        "min_amount_cents": int(charge["min_amount_cents"]),
        "properties": load_json(charge["properties"], {}),
        "filters": [
            {
                "lago_id": str(f["id"]),
                "invoice_display_name": f["invoice_display_name"],
                "properties": load_json(f["properties"], {}),
                "values": {key: list(values) for key, values in f["values"].items()},
                "created_at": iso(f["created_at"]),
            }
            for f in sorted(filters, key=lambda f: f["position"])
        ],
        "taxes": taxes,
    }


def present_threshold(row: Row) -> dict[str, Any]:
    return {
        "lago_id": str(row["id"]),
        "threshold_display_name": row["threshold_display_name"],
        "amount_cents": int(row["amount_cents"]),
        "recurring": bool(row["recurring"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def present_minimum_commitment(plan: Row, taxes: list[dict[str, Any]]) -> dict[str, Any] | None:
    if plan["minimum_commitment_amount_cents"] is None:
        return None
    return {
        "lago_id": str(plan["minimum_commitment_id"]),
        "plan_code": plan["code"],
        "amount_cents": int(plan["minimum_commitment_amount_cents"]),
        "invoice_display_name": plan["minimum_commitment_invoice_display_name"],
        "interval": plan["interval"],
        "created_at": iso(plan["created_at"]),
        "updated_at": iso(plan["updated_at"]),
        "taxes": taxes,
    }


def present_plan_fields(plan: Row) -> dict[str, Any]:
    return {
        "lago_id": str(plan["id"]),
        "lago_parent_id": str(plan["parent_id"]) if plan["parent_id"] else None,
        "name": plan["name"],
        "invoice_display_name": plan["invoice_display_name"],
        "created_at": iso(plan["created_at"]),
        "code": plan["code"],
        "interval": plan["interval"],
        "description": plan["description"],
        "amount_cents": int(plan["amount_cents"]),
        "amount_currency": plan["amount_currency"],
        "trial_period": float(plan["trial_period"]),
        "pay_in_advance": bool(plan["pay_in_advance"]),
        "bill_charges_monthly": bool(plan["bill_charges_monthly"])
        if plan["interval"] in ("yearly", "semiannual")
        else None,
        "metadata": load_json(plan["metadata"], {}),
    }
