"""Subscriptions: /api/v1/subscriptions, addressed by external_id."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import Caller, CurrentCaller, Store
from api.errors import NotFound
from api.pagination import Page
from api.schemas.plans import (
    ChargeEnvelope,
    ChargeFilterChangeEnvelope,
    ChargeFilterEnvelope,
    ChargeInput,
    PlanTree,
)
from api.schemas.subscriptions import SubscriptionEnvelope
from api.services.plan_editing import (
    charge_by_code,
    filter_inputs,
    kept_charges,
    newest_filter_of,
    present_charge_of,
    present_filter_of,
    present_tree,
    replace_charges,
    replace_filters,
    with_filter_changes,
)
from api.services.plans import clone_tree, load_trees
from api.services.subscriptions import SubscriptionService, find_subscription
from api.storage.catalog import CatalogStore, Row
from api.storage.lookups import find_by, rows_by_ids

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


# --- charges of a subscription's plan: overrides for this subscription only ---------------------
# The first change gives the subscription its own copy of the plan (as plan_overrides does).
OVERRIDABLE_CHARGE_FIELDS = {
    "invoice_display_name",
    "min_amount_cents",
    "properties",
    "filters",
    "tax_codes",
}


@dataclass
class SubscriptionPlan:
    subscription: Row
    tree: PlanTree
    shared: bool  # still the catalog plan: changing it needs a copy first

    @classmethod
    def load(cls, store: CatalogStore, caller: Caller, external_id: str) -> SubscriptionPlan:
        org = caller.organization_id
        subscription = find_subscription(store, org, external_id, None)
        plan = rows_by_ids(store, "plans", org, [subscription["plan_id"]]).get(
            subscription["plan_id"]
        )
        if plan is None:
            raise NotFound("plan")
        tree = load_trees(store, org, [plan])[0]
        return cls(subscription, tree, plan["parent_id"] is None)

    def own(self, caller: Caller) -> PlanTree:
        """The tree to change: a fresh copy while the catalog plan is shared (not saved yet)."""
        return clone_tree(caller.organization_id, self.tree) if self.shared else self.tree

    def own_filter_id(self, own: PlanTree, charge: Row, filter_id: str) -> str:
        """A filter id of the catalog plan names the copy's filter at the same position."""
        if not self.shared:
            return filter_id
        positions = {str(f["id"]): f["position"] for f in self.tree.filters}
        for candidate in own.filters:
            if candidate["charge_id"] == charge["id"] and candidate["position"] == positions.get(
                filter_id
            ):
                return str(candidate["id"])
        raise NotFound("charge_filter")

    def adopt(self, store: CatalogStore, caller: Caller, saved: PlanTree) -> None:
        if self.shared:
            row = {**self.subscription, "plan_id": saved.plan["id"]}
            store.write("subscriptions", [row], changed_by=caller.actor)


@contextmanager
def editing_charge(
    store: CatalogStore, caller: Caller, external_id: str, charge_code: str
) -> Iterator[tuple[SubscriptionPlan, PlanTree, Row]]:
    """Under the plans lock: the subscription's plan, the tree to change and the named charge."""
    with store.locks.hold(caller.organization_id, "plans"):
        current = SubscriptionPlan.load(store, caller, external_id)
        own = current.own(caller)
        yield current, own, charge_by_code(own, charge_code)


@router.get("/{external_id}/charges")
def list_subscription_charges(
    external_id: str, page: Page, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    current = SubscriptionPlan.load(store, caller, external_id)
    charges = present_tree(store, caller, current.tree)["charges"]
    return page.of_list("charges", charges)


@router.get("/{external_id}/charges/{charge_code}")
def get_subscription_charge(
    external_id: str, charge_code: str, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    current = SubscriptionPlan.load(store, caller, external_id)
    charge = charge_by_code(current.tree, charge_code)
    return {"charge": present_charge_of(store, caller, current.tree, charge)}


@router.put("/{external_id}/charges/{charge_code}")
def override_subscription_charge(
    external_id: str,
    charge_code: str,
    envelope: ChargeEnvelope,
    store: Store,
    caller: CurrentCaller,
) -> dict[str, Any]:
    with editing_charge(store, caller, external_id, charge_code) as (current, own, charge):
        sent = envelope.charge.model_dump(exclude_unset=True, include=OVERRIDABLE_CHARGE_FIELDS)
        override = ChargeInput.model_validate({**sent, "id": str(charge["id"])})
        charges = [override if item.id == override.id else item for item in kept_charges(own)]
        saved = replace_charges(store, caller, own, charges, locked=False)
        current.adopt(store, caller, saved)
    return {"charge": present_charge_of(store, caller, saved, charge_by_code(saved, charge_code))}


@router.get("/{external_id}/charges/{charge_code}/filters")
def list_subscription_filters(
    external_id: str, charge_code: str, page: Page, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    current = SubscriptionPlan.load(store, caller, external_id)
    charge = charge_by_code(current.tree, charge_code)
    filters = present_charge_of(store, caller, current.tree, charge)["filters"]
    return page.of_list("filters", filters)


@router.get("/{external_id}/charges/{charge_code}/filters/{filter_id}")
def get_subscription_filter(
    external_id: str, charge_code: str, filter_id: str, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    current = SubscriptionPlan.load(store, caller, external_id)
    charge = charge_by_code(current.tree, charge_code)
    return {"filter": present_filter_of(store, caller, current.tree, charge, filter_id)}


@router.post("/{external_id}/charges/{charge_code}/filters")
def create_subscription_filter(
    external_id: str,
    charge_code: str,
    envelope: ChargeFilterEnvelope,
    store: Store,
    caller: CurrentCaller,
) -> dict[str, Any]:
    with editing_charge(store, caller, external_id, charge_code) as (current, own, charge):
        filters = [*filter_inputs(own, charge), envelope.filter.model_copy(update={"id": None})]
        saved = replace_filters(store, caller, own, charge, filters, locked=False)
        current.adopt(store, caller, saved)
        created = newest_filter_of(saved, charge)
    return {"filter": present_filter_of(store, caller, saved, charge, str(created["id"]))}


@router.put("/{external_id}/charges/{charge_code}/filters/{filter_id}")
def update_subscription_filter(
    external_id: str,
    charge_code: str,
    filter_id: str,
    envelope: ChargeFilterChangeEnvelope,
    store: Store,
    caller: CurrentCaller,
) -> dict[str, Any]:
    with editing_charge(store, caller, external_id, charge_code) as (current, own, charge):
        own_id = current.own_filter_id(own, charge, filter_id)
        changes = envelope.filter.model_dump(exclude_unset=True, exclude_none=True)
        inputs = with_filter_changes(filter_inputs(own, charge), own_id, changes)
        saved = replace_filters(store, caller, own, charge, inputs, locked=False)
        current.adopt(store, caller, saved)
    return {"filter": present_filter_of(store, caller, saved, charge, own_id)}


@router.delete("/{external_id}/charges/{charge_code}/filters/{filter_id}")
def delete_subscription_filter(
    external_id: str, charge_code: str, filter_id: str, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    with editing_charge(store, caller, external_id, charge_code) as (current, own, charge):
        own_id = current.own_filter_id(own, charge, filter_id)
        presented = present_filter_of(store, caller, own, charge, own_id)
        remaining = [item for item in filter_inputs(own, charge) if item.id != own_id]
        saved = replace_filters(store, caller, own, charge, remaining, locked=False)
        current.adopt(store, caller, saved)
    return {"filter": presented}
