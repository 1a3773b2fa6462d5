"""Plans: /api/v1/plans, addressed by code; charges, filters and thresholds come with them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Caller, CurrentCaller, Store
from api.errors import FieldErrors, NotFound
from api.pagination import Page
from api.routers.metadata import metadata_router
from api.schemas.common import load_json
from api.schemas.plans import (
    ChargeEnvelope,
    ChargeFilterChangeEnvelope,
    ChargeFilterEnvelope,
    ChargeFilterInput,
    ChargeInput,
    PlanEnvelope,
    PlanInput,
    PlanTree,
)
from api.services.plans import PlanBuilder, delete_plan, load_trees, present_trees, save_plan
from api.services.subscriptions import cancel_outdated_downgrades
from api.storage.catalog import CatalogStore, Row
from api.storage.lookups import find_by, is_taken
from api.storage.subscriptions import end_all

router = APIRouter(prefix="/api/v1/plans", tags=["plans"])

# Per-subscription override plans share their parent's code and stay out of the plan catalog.
PARENT_PLANS = "parent_id IS NULL"


def find_plan_tree(store: CatalogStore, caller: Caller, code: str) -> PlanTree:
    plan = find_by(
        store, "plans", caller.organization_id, "code", code, resource="plan", where=PARENT_PLANS
    )
    return load_trees(store, caller.organization_id, [plan])[0]


def builder(store: CatalogStore, caller: Caller, tree: PlanTree) -> PlanBuilder:
    """A builder for changes of this plan, locked once it has subscriptions (as in Lago)."""
    attached = store.count(
        "subscriptions", caller.organization_id, "plan_id = {p:UUID}", {"p": tree.plan["id"]}
    )
    return PlanBuilder(store, caller, locked=attached > 0)


def present(store: CatalogStore, caller: Caller, tree: PlanTree) -> dict[str, Any]:
    return present_trees(store, caller.organization_id, [tree])[0]


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
    return {"plan": present(store, caller, change.tree)}


@router.put("/{code}")
def update_plan(
    code: str, envelope: PlanEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    org = caller.organization_id
    with store.locks.hold(caller.organization_id, "plans"):
        current = find_plan_tree(store, caller, code)
        change = builder(store, caller, current).build(envelope.plan, current)
        if change.tree.plan["code"] != code:
            _check_unique_code(store, caller, change.tree.plan["code"], current.plan["id"])
        save_plan(store, change, caller.actor)
        if change.tree.plan["amount_cents"] != current.plan["amount_cents"]:
            cancel_outdated_downgrades(store, org, change.tree.plan, caller.actor)
    return {"plan": present(store, caller, change.tree)}


@router.get("/{code}")
def get_plan(code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    return {"plan": present(store, caller, find_plan_tree(store, caller, code))}


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
    return {"plan": present(store, caller, tree)}


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
def _charge_by_code(tree: PlanTree, charge_code: str) -> Row:
    for charge in tree.charges:
        if charge["code"] == charge_code:
            return charge
    raise NotFound("charge")


def _kept(tree: PlanTree, *, without: Row | None = None) -> list[ChargeInput]:
    """The plan's charges, unchanged, as a charges list of a plan update."""
    return [
        ChargeInput(id=str(c["id"])) for c in tree.charges if without is None or c is not without
    ]


def _replace_charges(
    store: CatalogStore, caller: Caller, tree: PlanTree, charges: list[ChargeInput]
) -> PlanTree:
    change = builder(store, caller, tree).build(PlanInput(charges=charges), tree)
    codes = [charge["code"] for charge in change.tree.charges if charge["code"] is not None]
    if len(set(codes)) != len(codes):
        errors = FieldErrors()
        errors.add("code", "value_already_exist")
        errors.raise_if_any()
    save_plan(store, change, caller.actor)
    return change.tree


def _present_charge(
    store: CatalogStore, caller: Caller, tree: PlanTree, charge: Row
) -> dict[str, Any]:
    presented = present(store, caller, tree)["charges"]
    return next(c for c in presented if c["lago_id"] == str(charge["id"]))


@router.get("/{code}/charges")
def list_charges(code: str, page: Page, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    tree = find_plan_tree(store, caller, code)
    charges = present(store, caller, tree)["charges"]
    return {
        "charges": charges[page.offset : page.offset + page.per_page],
        "meta": page.meta(len(charges)),
    }


@router.get("/{code}/charges/{charge_code}")
def get_charge(code: str, charge_code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    tree = find_plan_tree(store, caller, code)
    return {"charge": _present_charge(store, caller, tree, _charge_by_code(tree, charge_code))}


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
        tree = _replace_charges(store, caller, tree, [*_kept(tree), body])
    return {"charge": _present_charge(store, caller, tree, _charge_by_code(tree, str(body.code)))}


@router.put("/{code}/charges/{charge_code}")
def update_charge(
    code: str, charge_code: str, envelope: ChargeEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    body = envelope.charge
    with store.locks.hold(caller.organization_id, "plans"):
        tree = find_plan_tree(store, caller, code)
        target = _charge_by_code(tree, charge_code)
        body.id = str(target["id"])
        charges = [body if item.id == body.id else item for item in _kept(tree)]
        tree = _replace_charges(store, caller, tree, charges)
        updated = next(c for c in tree.charges if c["id"] == target["id"])
    return {"charge": _present_charge(store, caller, tree, updated)}


@router.delete("/{code}/charges/{charge_code}")
def delete_charge(
    code: str, charge_code: str, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    with store.locks.hold(caller.organization_id, "plans"):
        tree = find_plan_tree(store, caller, code)
        target = _charge_by_code(tree, charge_code)
        presented = _present_charge(store, caller, tree, target)
        _replace_charges(store, caller, tree, _kept(tree, without=target))
    return {"charge": presented}


def _find_plan_row(store: CatalogStore, caller: Caller, code: str) -> Row:
    return find_by(
        store, "plans", caller.organization_id, "code", code, resource="plan", where=PARENT_PLANS
    )


router.include_router(metadata_router("plans", _find_plan_row))


# --- filters of a charge -----------------------------------------------------------------------
def _filter_inputs(tree: PlanTree, charge: Row) -> list[ChargeFilterInput]:
    """The charge's filters, unchanged, as inputs of a charge update."""
    filters = sorted(
        (f for f in tree.filters if f["charge_id"] == charge["id"]), key=lambda f: f["position"]
    )
    return [
        ChargeFilterInput(
            id=str(f["id"]),
            invoice_display_name=f["invoice_display_name"],
            properties=load_json(f["properties"], {}),
            values={key: list(values) for key, values in f["values"].items()},
        )
        for f in filters
    ]


def _replace_filters(
    store: CatalogStore,
    caller: Caller,
    tree: PlanTree,
    charge: Row,
    filters: list[ChargeFilterInput],
) -> PlanTree:
    charges = [
        ChargeInput(id=item.id, filters=filters) if item.id == str(charge["id"]) else item
        for item in _kept(tree)
    ]
    return _replace_charges(store, caller, tree, charges)


def _present_filter(
    store: CatalogStore, caller: Caller, tree: PlanTree, charge: Row, filter_id: str
) -> dict[str, Any]:
    for presented in _present_charge(store, caller, tree, charge)["filters"]:
        if presented["lago_id"] == filter_id:
            return presented
    raise NotFound("charge_filter")


@router.get("/{code}/charges/{charge_code}/filters")
def list_filters(
    code: str, charge_code: str, page: Page, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    tree = find_plan_tree(store, caller, code)
    filters = _present_charge(store, caller, tree, _charge_by_code(tree, charge_code))["filters"]
    return {
        "filters": filters[page.offset : page.offset + page.per_page],
        "meta": page.meta(len(filters)),
    }


@router.get("/{code}/charges/{charge_code}/filters/{filter_id}")
def get_filter(
    code: str, charge_code: str, filter_id: str, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    tree = find_plan_tree(store, caller, code)
    charge = _charge_by_code(tree, charge_code)
    return {"filter": _present_filter(store, caller, tree, charge, filter_id)}


@router.post("/{code}/charges/{charge_code}/filters")
def create_filter(
    code: str, charge_code: str, envelope: ChargeFilterEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    with store.locks.hold(caller.organization_id, "plans"):
        tree = find_plan_tree(store, caller, code)
        charge = _charge_by_code(tree, charge_code)
        new_filter = envelope.filter.model_copy(update={"id": None})
        tree = _replace_filters(
            store, caller, tree, charge, [*_filter_inputs(tree, charge), new_filter]
        )
        created = max(
            (f for f in tree.filters if f["charge_id"] == charge["id"]), key=lambda f: f["position"]
        )
    return {"filter": _present_filter(store, caller, tree, charge, str(created["id"]))}


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
        charge = _charge_by_code(tree, charge_code)
        inputs = _filter_inputs(tree, charge)
        if filter_id not in {item.id for item in inputs}:
            raise NotFound("charge_filter")
        changes = envelope.filter.model_dump(exclude_unset=True, exclude_none=True)
        inputs = [
            item.model_copy(update=changes) if item.id == filter_id else item for item in inputs
        ]
        tree = _replace_filters(store, caller, tree, charge, inputs)
    return {"filter": _present_filter(store, caller, tree, charge, filter_id)}


@router.delete("/{code}/charges/{charge_code}/filters/{filter_id}")
def delete_filter(
    code: str, charge_code: str, filter_id: str, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    with store.locks.hold(caller.organization_id, "plans"):
        tree = find_plan_tree(store, caller, code)
        charge = _charge_by_code(tree, charge_code)
        presented = _present_filter(store, caller, tree, charge, filter_id)
        remaining = [item for item in _filter_inputs(tree, charge) if item.id != filter_id]
        _replace_filters(store, caller, tree, charge, remaining)
    return {"filter": presented}
