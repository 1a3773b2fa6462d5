"""Subscriptions: /api/v1/subscriptions, addressed by external_id."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import CurrentCaller, Store
from api.pagination import Page
from api.schemas.subscriptions import SubscriptionEnvelope
from api.services.subscriptions import SubscriptionService, find_subscription
from api.storage.lookups import find_by

router = APIRouter(prefix="/api/v1/subscriptions", tags=["subscriptions"])

Status = Literal["active", "pending", "terminated", "canceled"]


@router.post("")
def create_subscription(
    envelope: SubscriptionEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    service = SubscriptionService(store, caller)
    row = service.create(envelope.subscription)
    return {"subscription": service.present([row])[0]}


@router.put("/{external_id}")
def update_subscription(
    external_id: str,
    envelope: SubscriptionEnvelope,
    store: Store,
    caller: CurrentCaller,
    status: Status | None = None,
) -> dict[str, Any]:
    service = SubscriptionService(store, caller)
    with store.locks.hold(caller.organization_id, "subscriptions"):
        service.apply_due_transitions()
        current = find_subscription(store, caller.organization_id, external_id, status)
        row = service.update(current, envelope.subscription)
    return {"subscription": service.present([row])[0]}


@router.get("/{external_id}")
def get_subscription(
    external_id: str, store: Store, caller: CurrentCaller, status: Status | None = None
) -> dict[str, Any]:
    service = SubscriptionService(store, caller)
    service.apply_due_transitions()
    row = find_subscription(store, caller.organization_id, external_id, status)
    return {"subscription": service.present([row])[0]}


@router.delete("/{external_id}")
def terminate_subscription(
    external_id: str,
    store: Store,
    caller: CurrentCaller,
    status: Literal["active", "pending"] = "active",
    on_termination_credit_note: Literal["credit", "refund", "skip"] | None = None,
    on_termination_invoice: Literal["generate", "skip"] = "generate",
) -> dict[str, Any]:
    service = SubscriptionService(store, caller)
    with store.locks.hold(caller.organization_id, "subscriptions"):
        service.apply_due_transitions()
        current = find_subscription(store, caller.organization_id, external_id, status)
        row = service.terminate(current, on_termination_credit_note, on_termination_invoice)
    return {"subscription": service.present([row])[0]}


@router.get("")
def list_subscriptions(
    page: Page,
    store: Store,
    caller: CurrentCaller,
    external_customer_id: Annotated[str | None, Query(max_length=255)] = None,
    plan_code: Annotated[str | None, Query(max_length=255)] = None,
    statuses: Annotated[list[Status] | None, Query(alias="status[]")] = None,
) -> dict[str, Any]:
    org = caller.organization_id
    service = SubscriptionService(store, caller)
    service.apply_due_transitions()
    conditions = ["status IN {statuses:Array(String)}"]
    parameters: dict[str, Any] = {"statuses": statuses or ["active"]}
    if external_customer_id is not None:
        customer = find_by(
            store, "customers", org, "external_id", external_customer_id, resource="customer"
        )
        conditions.append("customer_id = {customer:UUID}")
        parameters["customer"] = customer["id"]
    if plan_code is not None:
        conditions.append(
            "plan_id IN (SELECT id FROM plans FINAL WHERE organization_id = {org:UUID}"
            " AND is_deleted = 0 AND code = {plan_code:String})"
        )
        parameters["plan_code"] = plan_code
    where = " AND ".join(conditions)
    rows = store.select(
        "subscriptions", org, where, parameters, limit=page.per_page, offset=page.offset
    )
    total = store.count("subscriptions", org, where, parameters)
    return {"subscriptions": service.present(rows), "meta": page.meta(total)}
