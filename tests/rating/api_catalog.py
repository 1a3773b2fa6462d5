"""Create a billing catalog through the billing API with the official Lago client and send events
through the ingest routes, as a Lago user does, with the methods of ``Catalog`` so a rating
scenario states its inputs the same way either path.

Only what Lago's API can say is offered: everything happens now, except a subscription's start
(``subscription_at`` in the past). Terminations, plan changes and filters dated in the past have
no API form and stay with ``Catalog``. A Lago resource is named by its code or external id; the
methods return the ``lago_id`` as ``Catalog`` returns its ids, and remember the names behind them.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from clickhouse_connect.driver.client import Client
from lago_python_client.client import Client as LagoClient
from lago_python_client.models import (
    BillableMetric,
    BillableMetricFilter,
    BillableMetricFilters,
    Charge,
    ChargeFilter,
    Customer,
    MinimumCommitment,
    Plan,
    Subscription,
)
from lago_python_client.models.event import BatchEvent, Event

from meterhouse.orgs import create_organization
from tests.rating.catalog import utc

# The Lago client waits 10 s by default; a 2-core machine shared with other test runs is slower.
TIMEOUT = httpx.Timeout(60)


@dataclass
class ApiCatalog:
    """One new organization's catalog and events, written through the billing API."""

    lago: LagoClient
    organization_id: uuid.UUID
    _customers: dict[uuid.UUID, str] = field(default_factory=dict)
    _metrics: dict[uuid.UUID, str] = field(default_factory=dict)
    _plans: dict[uuid.UUID, str] = field(default_factory=dict)
    _charges: dict[uuid.UUID, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def for_new_organization(
        cls, admin_client: Client, api_url: str, *, timezone: str = "UTC"
    ) -> ApiCatalog:
        organization, api_key = create_organization(
            admin_client, f"rating-{secrets.token_hex(4)}", timezone=timezone
        )
        return cls(LagoClient(api_key=api_key, api_url=api_url), organization.organization_id)

    def customer(
        self, external_id: str, *, timezone: str | None = None, currency: str = "USD"
    ) -> uuid.UUID:
        body = Customer(
            external_id=external_id, name=external_id, currency=currency, timezone=timezone
        )
        created = self.lago.customers.create(body, timeout=TIMEOUT)
        assert created is not None
        return self._remember(self._customers, created.lago_id, external_id)

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
        body = BillableMetric(
            name=code,
            code=code,
            aggregation_type=aggregation_type,
            field_name=field_name,
            recurring=recurring,
            expression=expression,
            rounding_function=rounding_function,
            rounding_precision=rounding_precision,
            # Lago weighs levels by the second, and asks to say so.
            weighted_interval="seconds" if aggregation_type == "weighted_sum_agg" else None,
            filters=BillableMetricFilters(
                __root__=[
                    BillableMetricFilter(key=key, values=values)
                    for key, values in (filters or {}).items()
                ]
            ),
        )
        created = self.lago.billable_metrics.create(body, timeout=TIMEOUT)
        assert created is not None
        return self._remember(self._metrics, created.lago_id, code)

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
        commitment = (
            None
            if minimum_commitment_amount_cents is None
            else MinimumCommitment(amount_cents=minimum_commitment_amount_cents)
        )
        body = Plan(
            name=code,
            code=code,
            interval=interval,
            amount_cents=amount_cents,
            amount_currency=currency,
            pay_in_advance=pay_in_advance,
            trial_period=float(trial_period),
            bill_charges_monthly=bill_charges_monthly,
            minimum_commitment=commitment,
        )
        created = self.lago.plans.create(body, timeout=TIMEOUT)
        assert created is not None
        return self._remember(self._plans, created.lago_id, code)

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
        """A charge added to the plan, or, with ``charge_id``, that charge's new properties and
        display name (all Lago lets change once a plan has subscriptions)."""
        plan_code = self._plans[plan_id]
        if charge_id is not None:
            _, code = self._charges[charge_id]
            body = Charge(properties=properties, invoice_display_name=invoice_display_name)
            self.lago.plan_charges.update(plan_code, code, body)
            return charge_id
        taken = {code for plan, code in self._charges.values() if plan == plan_code}
        code = self._metrics[metric_id]
        code = code if code not in taken else f"{code}_{len(taken)}"
        body = Charge(
            billable_metric_id=str(metric_id),
            code=code,
            charge_model=charge_model,
            properties=properties,
            pay_in_advance=pay_in_advance,
            prorated=prorated,
            min_amount_cents=min_amount_cents,
            invoice_display_name=invoice_display_name,
        )
        created = self.lago.plan_charges.create(plan_code, body)
        return self._remember(self._charges, created.lago_id, (plan_code, code))

    def charge_filter(
        self,
        charge_id: uuid.UUID,
        plan_id: uuid.UUID,
        values: dict[str, list[str]],
        properties: dict[str, Any],
    ) -> uuid.UUID:
        """A filter of the charge, created now: of two equally specific filters that match an
        event, the one created first prices it."""
        plan_code, charge_code = self._charges[charge_id]
        assert plan_code == self._plans[plan_id], "the charge belongs to another plan"
        body = ChargeFilter(values=values, properties=properties)
        created = self.lago.plans.create_charge_filter(plan_code, charge_code, body)
        assert created.lago_id is not None
        return uuid.UUID(created.lago_id)

    def subscription(
        self,
        external_id: str,
        customer_id: uuid.UUID,
        plan_id: uuid.UUID,
        started_at: str,
        *,
        billing_time: str = "calendar",
        trial_ended_at: str | None = None,
    ) -> uuid.UUID:
        """A subscription that started at ``started_at`` (Lago's ``subscription_at`` in the
        past). Its trial ends after the plan's ``trial_period``, as the API derives it:
        ``trial_ended_at`` states that instant and is checked against the API's answer."""
        body = Subscription(
            external_customer_id=self._customers[customer_id],
            plan_code=self._plans[plan_id],
            external_id=external_id,
            subscription_at=utc(started_at).isoformat(),
            billing_time=billing_time,
        )
        created = self.lago.subscriptions.create(body, timeout=TIMEOUT)
        assert created is not None and created.status == "active", created
        assert created.started_at is not None and utc(created.started_at) == utc(started_at)
        if trial_ended_at is not None:
            assert created.trial_ended_at is not None
            assert utc(created.trial_ended_at) == utc(trial_ended_at), created
        return uuid.UUID(created.lago_id)

    def events(
        self, external_subscription_id: str, code: str, events: list[dict[str, Any]]
    ) -> None:
        """Events as (timestamp, properties[, transaction_id, precise_total_amount_cents]) dicts,
        sent in one batch; a 200 means every event is stored."""
        batch = [
            Event(
                transaction_id=event.get("transaction_id", f"{code}-{uuid.uuid4()}-{number}"),
                external_subscription_id=external_subscription_id,
                code=code,
                timestamp=int(utc(event["timestamp"]).timestamp()),
                properties=event.get("properties", {}),
                precise_total_amount_cents=_text(event.get("precise_total_amount_cents")),
            )
            for number, event in enumerate(events)
        ]
        self.lago.events.batch_create(BatchEvent(events=batch))

    @staticmethod
    def _remember(names: dict[uuid.UUID, Any], lago_id: str | None, name: Any) -> uuid.UUID:
        assert lago_id is not None
        names[uuid.UUID(lago_id)] = name
        return uuid.UUID(lago_id)


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)
