"""Plans: /api/v1/plans, addressed by code; charges, filters and thresholds come with them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Caller, CurrentCaller, Store
from api.errors import FieldErrors, NotFound
from api.pagination import Page
from api.routers.metadata import metadata_router
from api.schemas.plans import (
    ChargeEnvelope,
    ChargeFilterChangeEnvelope,
    ChargeFilterEnvelope,
    PlanEnvelope,
)
from api.services.plan_editing import (
    PARENT_PLANS,
    charge_by_code,
    filter_inputs,
    find_plan_tree,
    kept_charges,
    newest_filter_of,
    plan_builder,
    present_charge_of,
    present_filter_of,
    present_tree,
    replace_charges,
    replace_filters,
    with_filter_changes,
)
from api.services.plans import PlanBuilder, delete_plan, load_trees, present_trees, save_plan
from api.services.subscriptions import cancel_outdated_downgrades
from api.storage.catalog import CatalogStore, Row
from api.storage.lookups import find_by, is_taken
from api.storage.subscriptions import end_all

router = APIRouter(prefix="/api/v1/plans", tags=["plans"])


def _check_unique_code(
    store: CatalogStore, caller: Caller, code: str, except_id: Any = None
) -> None:
    org = caller.organization_id
    if is_taken(store, "plans", org, "code", code, except_id=except_id, where=PARENT_PLANS):
        errors = FieldErrors()
        errors.add("code", "value_already_exist")
        errors.raise_if_any()


@router.post("")
def create_plan(envelope: PlanEnvelope, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    change = PlanBuilder(store, caller).build(envelope.plan, None)
    with store.locks.hold(caller.organization_id, "plans"):
        _check_unique_code(store, caller, change.tree.plan["code"])
        save_plan(store, change, caller.actor)
    return {"plan": present_tree(store, caller, change.tree)}


@router.put("/{code}")
def update_plan(
    code: str, envelope: PlanEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    org = caller.organization_id
    with store.locks.hold(caller.organization_id, "plans"):
        current = find_plan_tree(store, caller, code)
        change = plan_builder(store, caller, current).build(envelope.plan, current)
        if change.tree.plan["code"] != code:
            _check_unique_code(store, caller, change.tree.plan["code"], current.plan["id"])
        save_plan(store, change, caller.actor)
        if change.tree.plan["amount_cents"] != current.plan["amount_cents"]:
            cancel_outdated_downgrades(store, org, change.tree.plan, caller.actor)
    return {"plan": present_tree(store, caller, change.tree)}


@router.get("/{code}")
def get_plan(code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    return {"plan": present_tree(store, caller, find_plan_tree(store, caller, code))}


@router.delete("/{code}")
def delete_plan_route(code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    tree = find_plan_tree(store, caller, code)
    org = caller.organization_id
    # Like Lago, deleting a plan ends its subscriptions, override plans included.
    children = store.select("plans", org, "parent_id = {p:UUID}", {"p": tree.plan["id"]})
    plan_ids = [tree.plan["id"], *(child["id"] for child in children)]
    end_all(store, org, "plan_id", plan_ids, caller.actor)
    for child_tree in load_trees(store, org, children):
        delete_plan(store, child_tree, caller.actor)
    delete_plan(store, tree, caller.actor)
    return {"plan": present_tree(store, caller, tree)}


@router.get("")
def list_plans(page: Page, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    org = caller.organization_id
    plans = store.select("plans", org, PARENT_PLANS, limit=page.per_page, offset=page.offset)
    trees = load_trees(store, org, plans)
    return {
        "plans": present_trees(store, org, trees),
        "meta": page.meta(store.count("plans", org, PARENT_PLANS)),
    }


# --- charges of a plan, addressed by charge code -------------------------------------------------
@router.get("/{code}/charges")
def list_charges(code: str, page: Page, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    tree = find_plan_tree(store, caller, code)
    charges = present_tree(store, caller, tree)["charges"]
    return page.of_list("charges", charges)


@router.get("/{code}/charges/{charge_code}")
def get_charge(code: str, charge_code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    tree = find_plan_tree(store, caller, code)
    return {"charge": present_charge_of(store, caller, tree, charge_by_code(tree, charge_code))}


@router.post("/{code}/charges")
def create_charge(
    code: str, envelope: ChargeEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    body = envelope.charge
    with store.locks.hold(caller.organization_id, "plans"):
        tree = find_plan_tree(store, caller, code)
        if body.code is None:
            errors = FieldErrors()
            errors.add("code", "value_is_mandatory")
            errors.raise_if_any()
        body.id = None
        tree = replace_charges(store, caller, tree, [*kept_charges(tree), body])
    return {"charge": present_charge_of(store, caller, tree, charge_by_code(tree, str(body.code)))}


@router.put("/{code}/charges/{charge_code}")
def update_charge(
    code: str, charge_code: str, envelope: ChargeEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    body = envelope.charge
    with store.locks.hold(caller.organization_id, "plans"):
        tree = find_plan_tree(store, caller, code)
        target = charge_by_code(tree, charge_code)
        body.id = str(target["id"])
        charges = [body if item.id == body.id else item for item in kept_charges(tree)]
        tree = replace_charges(store, caller, tree, charges)
        updated = next(c for c in tree.charges if c["id"] == target["id"])
    return {"charge": present_charge_of(store, caller, tree, updated)}


@router.delete("/{code}/charges/{charge_code}")
def delete_charge(
    code: str, charge_code: str, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    with store.locks.hold(caller.organization_id, "plans"):
        tree = find_plan_tree(store, caller, code)
        target = charge_by_code(tree, charge_code)
        presented = present_charge_of(store, caller, tree, target)
        replace_charges(store, caller, tree, kept_charges(tree, without=target))
    return {"charge": presented}


def _find_plan_row(store: CatalogStore, caller: Caller, code: str) -> Row:
    return find_by(
        store, "plans", caller.organization_id, "code", code, resource="plan", where=PARENT_PLANS
    )


router.include_router(metadata_router("plans", _find_plan_row))


# --- filters of a charge -----------------------------------------------------------------------
@router.get("/{code}/charges/{charge_code}/filters")
def list_filters(
    code: str, charge_code: str, page: Page, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    tree = find_plan_tree(store, caller, code)
    filters = present_charge_of(store, caller, tree, charge_by_code(tree, charge_code))["filters"]
    return page.of_list("filters", filters)


@router.get("/{code}/charges/{charge_code}/filters/{filter_id}")
def get_filter(
    code: str, charge_code: str, filter_id: str, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    tree = find_plan_tree(store, caller, code)
    charge = charge_by_code(tree, charge_code)
    return {"filter": present_filter_of(store, caller, tree, charge, filter_id)}


@router.post("/{code}/charges/{charge_code}/filters")
def create_filter(
    code: str, charge_code: str, envelope: ChargeFilterEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    with store.locks.hold(caller.organization_id, "plans"):
        tree = find_plan_tree(store, caller, code)
        charge = charge_by_code(tree, charge_code)
        new_filter = envelope.filter.model_copy(update={"id": None})
        tree = replace_filters(
            store, caller, tree, charge, [*filter_inputs(tree, charge), new_filter]
        )
        created = newest_filter_of(tree, charge)
    return {"filter": present_filter_of(store, caller, tree, charge, str(created["id"]))}


@router.put("/{code}/charges/{charge_code}/filters/{filter_id}")
def update_filter(
    code: str,
    charge_code: str,
    filter_id: str,
    envelope: ChargeFilterChangeEnvelope,
    store: Store,
    caller: CurrentCaller,
) -> dict[str, Any]:
    with store.locks.hold(caller.organization_id, "plans"):
        tree = find_plan_tree(store, caller, code)
        charge = charge_by_code(tree, charge_code)
        inputs = filter_inputs(tree, charge)
        if filter_id not in {item.id for item in inputs}:
            raise NotFound("charge_filter")
        changes = envelope.filter.model_dump(exclude_unset=True, exclude_none=True)
        inputs = with_filter_changes(inputs, filter_id, changes)
        tree = replace_filters(store, caller, tree, charge, inputs)
    return {"filter": present_filter_of(store, caller, tree, charge, filter_id)}


@router.delete("/{code}/charges/{charge_code}/filters/{filter_id}")
def delete_filter(
    code: str, charge_code: str, filter_id: str, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    with store.locks.hold(caller.organization_id, "plans"):
        tree = find_plan_tree(store, caller, code)
        charge = charge_by_code(tree, charge_code)
        presented = present_filter_of(store, caller, tree, charge, filter_id)
        remaining = [item for item in filter_inputs(tree, charge) if item.id != filter_id]
        replace_filters(store, caller, tree, charge, remaining)
    return {"filter": presented}
