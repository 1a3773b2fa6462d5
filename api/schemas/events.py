"""Lago's event shapes: a stored event as ``GET /events/{transaction_id}`` answers it, and the
body and fees of ``POST /events/estimate_fees``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
from pydantic import Field

from api.schemas.common import Body, RequiredText, decimal_text, iso
from api.storage.catalog import Row
from api.storage.events import StoredEvent
from ingestion.responses import EVENT_ID_NAMESPACE
from ingestion.timetext import iso_text

HUNDRED = Decimal(100)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def millis(value: datetime) -> int:
    """Unix milliseconds of a UTC timestamp (naive ones are UTC), in integer arithmetic."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(milliseconds=1)


def stored_properties(event: StoredEvent) -> dict[str, Any]:
    """The properties as sent (numbers stay numbers): ``raw`` keeps the event as received, for
    Lago events and CloudEvents alike (the latter mapped to Lago's fields)."""
    try:
        properties = orjson.loads(event.raw).get("properties")
    except (orjson.JSONDecodeError, AttributeError):
        return {}
    return properties if isinstance(properties, dict) else {}


def present_event(
    organization_id: uuid.UUID,
    transaction_id: str,
    event: StoredEvent,
    subscription: tuple[uuid.UUID, uuid.UUID] | None,
) -> dict[str, Any]:
    # The same lago_id the ingest routes answered with: uuid5 over the dedup key.
    natural_key = f"{organization_id}/{event.external_subscription_id}/{transaction_id}"
    return {
        "lago_id": str(uuid.uuid5(EVENT_ID_NAMESPACE, natural_key)),
        "transaction_id": transaction_id,
        "lago_customer_id": str(subscription[1]) if subscription else None,
        "lago_subscription_id": str(subscription[0]) if subscription else None,
        "external_customer_id": event.external_customer_id or None,
        "external_subscription_id": event.external_subscription_id,
        "code": event.code,
        "timestamp": iso_text(millis(event.timestamp)),
        "precise_total_amount_cents": decimal_text(event.precise_total_amount_cents),
        "properties": stored_properties(event),
        "created_at": iso_text(millis(event.ingested_at)),
    }


class EstimatedEvent(Body):
    """The event of ``POST /events/estimate_fees``. Like Lago, it is priced now: a timestamp is
    ignored, and its transaction_id is only echoed back (it is never stored)."""

    code: RequiredText
    external_subscription_id: RequiredText
    transaction_id: str | int | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    precise_total_amount_cents: str | int | float | None = None


class EstimatedEventEnvelope(Body):
    event: EstimatedEvent


@dataclass(frozen=True)
class AppliedTax:
    tax_id: uuid.UUID
    name: str
    code: str
    rate: Decimal
    description: str | None
    precise_amount_cents: Decimal  # of the fee it applies to


def applied_taxes(amount_cents: int, taxes: Sequence[Row]) -> list[AppliedTax]:
    """Each tax on the fee's amount, unrounded (Lago's standalone fees: no coupon applies)."""
    return [
        AppliedTax(
            tax["id"],
            tax["name"],
            tax["code"],
            tax["rate"],
            tax["description"],
            Decimal(amount_cents) * tax["rate"] / HUNDRED,
        )  # fmt: skip
        for tax in taxes
    ]


def cents(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def present_estimated_fee(
    row: Row, taxes: Sequence[AppliedTax], transaction_id: str | None
) -> dict[str, Any]:
    """One estimated fee in Lago's fee shape; nothing is stored, so it has no lago_id."""
    amount_cents: int = row["amount_cents"]
    precise_taxes = sum((tax.precise_amount_cents for tax in taxes), Decimal(0))
    taxes_cents = cents(precise_taxes)
    filter_id = row["charge_filter_id"]
    return {
        "lago_id": None,
        "lago_charge_id": str(row["charge_id"]),
        "lago_charge_filter_id": str(filter_id) if filter_id else None,
        "lago_invoice_id": None,
        "lago_true_up_fee_id": None,
        "lago_true_up_parent_fee_id": None,
        "lago_subscription_id": str(row["subscription_id"]),
        "external_subscription_id": row["external_subscription_id"],
        "lago_customer_id": str(row["customer_id"]),
        "external_customer_id": row["external_customer_id"],
        "amount_cents": amount_cents,
        "amount_currency": row["currency"],
        "precise_amount": decimal_text(row["amount"]),
        "precise_unit_amount": decimal_text(row["precise_unit_amount"]),
        "precise_coupons_amount_cents": "0.0",
        "sub_total_excluding_taxes_amount_cents": amount_cents,
        "sub_total_excluding_taxes_precise_amount_cents": decimal_text(Decimal(amount_cents)),
        "taxes_amount_cents": taxes_cents,
        "taxes_precise_amount": decimal_text(precise_taxes),
        "taxes_rate": float(sum((tax.rate for tax in taxes), Decimal(0))),
        "total_amount_cents": amount_cents + taxes_cents,
        "total_amount_currency": row["currency"],
        "units": decimal_text(row["units"]),
        "total_aggregated_units": decimal_text(row["units"]),
        "events_count": row["events_count"],
        "pay_in_advance": True,
        "invoiceable": bool(row["invoiceable"]),
        "event_transaction_id": transaction_id,
        "payment_status": "pending",
        "from_date": iso(row["period_from"]),
        "to_date": iso(row["period_to"]),
        "created_at": None,
        "succeeded_at": None,
        "failed_at": None,
        "refunded_at": None,
        "description": row["invoice_display_name"],
        "item": {
            "type": "charge",
            "code": row["billable_metric_code"],
            "name": row["invoice_display_name"],
            "invoice_display_name": row["invoice_display_name"],
            "lago_item_id": str(row["billable_metric_id"]),
            "item_type": "BillableMetric",
            "grouped_by": dict(row["grouped_by"]),
        },
        "applied_taxes": [
            {
                "lago_id": None,
                "lago_fee_id": None,
                "lago_tax_id": str(tax.tax_id),
                "tax_name": tax.name,
                "tax_code": tax.code,
                "tax_rate": float(tax.rate),
                "tax_description": tax.description,
                "amount_cents": cents(tax.precise_amount_cents),
                "amount_currency": row["currency"],
                "created_at": None,
            }
            for tax in taxes
        ],
    }
