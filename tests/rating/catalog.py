"""Write a billing catalog and events straight into the warehouse tables, as the billing and ingest
APIs store them (catalog rows versioned, events raw), so rating scenarios state their inputs in a
few lines. Each scenario gets its own organization, so scenarios never see each other's data."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from api.services.metric_expressions import translate


def utc(text: str) -> datetime:
    """An ISO 8601 instant ('2024-03-05' or '2024-03-05T10:00:00') as an aware UTC datetime."""
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _version() -> int:
    return time.time_ns() // 1000


@dataclass
class Catalog:
    """One organization's catalog and events in the warehouse database of ``client``."""

    client: Client
    organization_id: uuid.UUID = field(default_factory=uuid.uuid4)
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        self._insert(
            "organizations",
            organization_id=self.organization_id,
            name=f"org {self.organization_id}",
            timezone=self.timezone,
        )

    def _insert(self, table: str, **values: Any) -> None:
        now = datetime.now(UTC)
        values.setdefault("created_at", now)
        if table != "organizations":
            values.setdefault("organization_id", self.organization_id)
        values.setdefault("updated_at", now)
        values.setdefault("version", _version())
        self.client.insert(table, [list(values.values())], column_names=list(values))

    def customer(
        self, external_id: str, *, timezone: str | None = None, currency: str = "USD"
    ) -> uuid.UUID:
        customer_id = uuid.uuid4()
        self._insert(
            "customers",
            id=customer_id,
            external_id=external_id,
            name=external_id,
            currency=currency,
            timezone=timezone,
        )
        return customer_id

    def metric(
        self,
        code: str,
        aggregation_type: str,
        field_name: str | None = None,
        *,
        recurring: bool = False,
        expression: str | None = None,
        rounding_function: str | None = None,
        rounding_precision: int | None = None,
        filters: dict[str, list[str]] | None = None,
    ) -> uuid.UUID:
        metric_id = uuid.uuid4()
        self._insert(
            "billable_metrics",
            id=metric_id,
            code=code,
            name=code,
            aggregation_type=aggregation_type,
            field_name=field_name,
            recurring=int(recurring),
            expression=expression,
            expression_sql=translate(expression) if expression else None,
            rounding_function=rounding_function,
            rounding_precision=rounding_precision,
            filters=filters or {},
        )
        return metric_id

    def plan(
        self,
        code: str,
        *,
        interval: str = "monthly",
        amount_cents: int = 0,
        currency: str = "USD",
        pay_in_advance: bool = False,
        trial_period: Decimal = Decimal(0),
        bill_charges_monthly: bool = False,
        minimum_commitment_amount_cents: int | None = None,
    ) -> uuid.UUID:
        plan_id = uuid.uuid4()
        self._insert(
            "plans",
            id=plan_id,
            code=code,
            name=code,
            interval=interval,
            amount_cents=amount_cents,
            amount_currency=currency,
            trial_period=trial_period,
            pay_in_advance=int(pay_in_advance),
            bill_charges_monthly=int(bill_charges_monthly),
            minimum_commitment_amount_cents=minimum_commitment_amount_cents,
        )
        return plan_id

    def charge(
        self,
        plan_id: uuid.UUID,
        metric_id: uuid.UUID,
        charge_model: str,
        properties: dict[str, Any],
        *,
        pay_in_advance: bool = False,
        prorated: bool = False,
        min_amount_cents: int = 0,
        invoice_display_name: str | None = None,
        charge_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """A charge, or a new version of ``charge_id`` (a price change)."""
        charge_id = charge_id or uuid.uuid4()
        self._insert(
            "charges",
            id=charge_id,
            plan_id=plan_id,
            billable_metric_id=metric_id,
            position=0,
            charge_model=charge_model,
            properties=json.dumps(properties),
            grouped_by=list(properties.get("grouped_by") or []),
            pay_in_advance=int(pay_in_advance),
            prorated=int(prorated),
            min_amount_cents=min_amount_cents,
            invoice_display_name=invoice_display_name,
        )
        return charge_id

    def charge_filter(
        self,
        charge_id: uuid.UUID,
        plan_id: uuid.UUID,
        values: dict[str, list[str]],
        properties: dict[str, Any],
        *,
        created_at: datetime | None = None,
    ) -> uuid.UUID:
        filter_id = uuid.uuid4()
        self._insert(
            "charge_filters",
            id=filter_id,
            charge_id=charge_id,
            plan_id=plan_id,
            position=0,
            properties=json.dumps(properties),
            grouped_by=list(properties.get("grouped_by") or []),
            values=values,
            created_at=created_at or datetime.now(UTC),
        )
        return filter_id

    def subscription(
        self,
        external_id: str,
        customer_id: uuid.UUID,
        plan_id: uuid.UUID,
        started_at: str,
        *,
        billing_time: str = "calendar",
        subscription_at: str | None = None,
        terminated_at: str | None = None,
        trial_ended_at: str | None = None,
        previous_subscription_id: uuid.UUID | None = None,
        next_subscription_id: uuid.UUID | None = None,
        subscription_id: uuid.UUID | None = None,
        on_termination_invoice: str = "generate",
    ) -> uuid.UUID:
        subscription_id = subscription_id or uuid.uuid4()
        self._insert(
            "subscriptions",
            id=subscription_id,
            external_id=external_id,
            customer_id=customer_id,
            plan_id=plan_id,
            billing_time=billing_time,
            status="terminated" if terminated_at else "active",
            subscription_at=utc(subscription_at or started_at),
            started_at=utc(started_at),
            terminated_at=utc(terminated_at) if terminated_at else None,
            trial_ended_at=utc(trial_ended_at) if trial_ended_at else None,
            previous_subscription_id=previous_subscription_id,
            next_subscription_id=next_subscription_id,
            on_termination_invoice=on_termination_invoice,
        )
        return subscription_id

    def events(
        self, external_subscription_id: str, code: str, events: list[dict[str, Any]]
    ) -> None:
        """Events as (timestamp, properties[, transaction_id, precise_total_amount_cents]) dicts."""
        rows = []
        for number, event in enumerate(events):
            properties = {k: str(v) for k, v in event.get("properties", {}).items()}
            rows.append(
                [
                    self.organization_id,
                    external_subscription_id,
                    event.get("transaction_id", f"{code}-{uuid.uuid4()}-{number}"),
                    code,
                    utc(event["timestamp"]),
                    properties,
                    event.get("precise_total_amount_cents"),
                    json.dumps(event, default=str),
                ]
            )
        self.client.insert(
            "events",
            rows,
            column_names=[
                "organization_id",
                "external_subscription_id",
                "transaction_id",
                "code",
                "timestamp",
                "properties",
                "precise_total_amount_cents",
                "raw",
            ],
        )
