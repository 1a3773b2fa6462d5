"""Editing a plan's charges and filters one at a time (the plan and subscription routes).

Each change is applied as a whole-plan update through PlanBuilder, so the same validation and
no-partial-write rules hold as for ``PUT /plans/{code}``.
"""

from __future__ import annotations

from typing import Any

from api.deps import Caller
from api.errors import FieldErrors, NotFound
from api.schemas.common import load_json
from api.schemas.plans import ChargeFilterInput, ChargeInput, PlanInput, PlanTree
from api.services.plans import PlanBuilder, load_trees, present_trees, save_plan
from api.storage.catalog import CatalogStore, Row
from api.storage.lookups import find_by

# Per-subscription override plans share their parent's code and stay out of the plan catalog.
PARENT_PLANS = "parent_id IS NULL"


def find_plan_tree(store: CatalogStore, caller: Caller, code: str) -> PlanTree:
    plan = find_by(
        store, "plans", caller.organization_id, "code", code, resource="plan", where=PARENT_PLANS
    )
    return load_trees(store, caller.organization_id, [plan])[0]


def plan_builder(store: CatalogStore, caller: Caller, tree: PlanTree) -> PlanBuilder:
    """A builder for changes of this plan, locked once it has subscriptions (as in Lago)."""
    attached = store.count(
        "subscriptions", caller.organization_id, "plan_id = {p:UUID}", {"p": tree.plan["id"]}
    )
    return PlanBuilder(store, caller, locked=attached > 0)


def present_tree(store: CatalogStore, caller: Caller, tree: PlanTree) -> dict[str, Any]:
    return present_trees(store, caller.organization_id, [tree])[0]


def charge_by_code(tree: PlanTree, charge_code: str) -> Row:
    for charge in tree.charges:
        if charge["code"] == charge_code:
            return charge
    raise NotFound("charge")


def kept_charges(tree: PlanTree, *, without: Row | None = None) -> list[ChargeInput]:
    """The plan's charges, unchanged, as a charges list of a plan update."""
    return [
        ChargeInput(id=str(c["id"])) for c in tree.charges if without is None or c is not without
    ]


def replace_charges(
    store: CatalogStore,
    caller: Caller,
    tree: PlanTree,
    charges: list[ChargeInput],
    *,
    locked: bool | None = None,
) -> PlanTree:
    """Save the plan with these charges; ``locked`` None: locked when it has subscriptions."""
    builder = plan_builder(store, caller, tree) if locked is None else None
    builder = builder or PlanBuilder(store, caller, locked=bool(locked))
    change = builder.build(PlanInput(charges=charges), tree)
    codes = [charge["code"] for charge in change.tree.charges if charge["code"] is not None]
    if len(set(codes)) != len(codes):
        errors = FieldErrors()
        errors.add("code", "value_already_exist")
        errors.raise_if_any()
    save_plan(store, change, caller.actor)
    return change.tree


def present_charge_of(
    store: CatalogStore, caller: Caller, tree: PlanTree, charge: Row
) -> dict[str, Any]:
    presented = present_tree(store, caller, tree)["charges"]
    return next(c for c in presented if c["lago_id"] == str(charge["id"]))


def filter_inputs(tree: PlanTree, charge: Row) -> list[ChargeFilterInput]:
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


def newest_filter_of(tree: PlanTree, charge: Row) -> Row:
    """The charge's filter in the last position (the one a create has just appended)."""
    return max(
        (f for f in tree.filters if f["charge_id"] == charge["id"]), key=lambda f: f["position"]
    )


def with_filter_changes(
    inputs: list[ChargeFilterInput], filter_id: str, changes: dict[str, Any]
) -> list[ChargeFilterInput]:
    """The filter inputs with ``changes`` applied to the one whose id is ``filter_id``."""
    return [item.model_copy(update=changes) if item.id == filter_id else item for item in inputs]


def replace_filters(
    store: CatalogStore,
    caller: Caller,
    tree: PlanTree,
    charge: Row,
    filters: list[ChargeFilterInput],
    *,
    locked: bool | None = None,
) -> PlanTree:
    charges = [
        ChargeInput(id=item.id, filters=filters) if item.id == str(charge["id"]) else item
        for item in kept_charges(tree)
    ]
    return replace_charges(store, caller, tree, charges, locked=locked)


def present_filter_of(
    store: CatalogStore, caller: Caller, tree: PlanTree, charge: Row, filter_id: str
) -> dict[str, Any]:
    for presented in present_charge_of(store, caller, tree, charge)["filters"]:
        if presented["lago_id"] == filter_id:
            return presented
    raise NotFound("charge_filter")
