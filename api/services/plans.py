"""Building, validating, saving and loading plans with their charges, filters and thresholds.

A request is validated completely before anything is written, so a plan with one invalid charge
stores nothing. Updates keep the ids of charges (matched by ``id``), filters (matched by their
values) and thresholds (matched by ``id``), so the change history of a price is one record's
versions.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from api.deps import Caller
from api.errors import FieldErrors, NotFound
from api.reference import CURRENCIES
from api.schemas.charge_models import check_properties, grouping_keys, kept_properties
from api.schemas.common import dump_json, load_json
from api.schemas.plans import (
    ALL_FILTER_VALUES,
    ChargeFilterInput,
    ChargeInput,
    PlanInput,
    PlanTree,
    UsageThresholdInput,
    present_charge,
    present_minimum_commitment,
    present_plan_fields,
    present_threshold,
)
from api.schemas.taxes import present_taxes
from api.storage.catalog import CatalogStore, Row, new_row
from api.storage.lookups import rows_by_ids, tax_ids_for_codes, taxes_by_id

PLAN_FIELDS = (
    "name",
    "invoice_display_name",
    "code",
    "interval",
    "description",
    "amount_cents",
    "amount_currency",
    "trial_period",
)
EDITABLE_WHEN_LOCKED = ("name", "invoice_display_name", "description", "amount_cents")
CHARGE_FIELDS_WHEN_LOCKED = {"id", "invoice_display_name", "properties", "filters", "tax_codes"}
# Lago: aggregations whose value cannot be billed event by event.
NOT_IN_ADVANCE_AGGREGATIONS = {"max_agg", "weighted_sum_agg", "latest_agg"}


@dataclass
class PlanChange:
    """What saving a plan writes: the new tree and the children it removes."""

    tree: PlanTree
    removed: PlanTree = field(default_factory=lambda: PlanTree(plan={}))


def plan_defaults() -> dict[str, Any]:
    return {
        "parent_id": None,
        "name": None,
        "invoice_display_name": None,
        "code": None,
        "interval": None,
        "description": None,
        "amount_cents": None,
        "amount_currency": None,
        "trial_period": Decimal(0),
        "pay_in_advance": 0,
        "bill_charges_monthly": 0,
        "minimum_commitment_id": None,
        "minimum_commitment_amount_cents": None,
        "minimum_commitment_invoice_display_name": None,
        "minimum_commitment_tax_ids": [],
        "tax_ids": [],
        "metadata": "{}",
    }


class PlanBuilder:
    """Applies a plan request to the current tree (or to nothing), collecting every error."""

    def __init__(self, store: CatalogStore, caller: Caller, *, locked: bool = False) -> None:
        """``locked``: the plan already has subscriptions. Like Lago, only its names,
        description, amount, taxes, commitment, thresholds and the display name, properties,
        filters and taxes of its existing charges can change then."""
        self.store = store
        self.org = caller.organization_id
        self.errors = FieldErrors()
        self.locked = locked

    def build(
        self, body: PlanInput, current: PlanTree | None, *, partial_charges: bool = False
    ) -> PlanChange:
        plan = dict(current.plan) if current else new_row(self.org, **plan_defaults())
        self._apply_plan_fields(plan, body)
        change = PlanChange(PlanTree(plan))
        old = current or PlanTree(plan)
        change.tree.thresholds = list(old.thresholds)
        if body.usage_thresholds is not None:
            self._apply_thresholds(change, old, body.usage_thresholds)
        change.tree.charges, change.tree.filters = list(old.charges), list(old.filters)
        if body.charges is not None:
            self._apply_charges(change, old, body.charges, partial_charges)
        self.errors.raise_if_any()
        return change

    def _apply_plan_fields(self, plan: Row, body: PlanInput) -> None:
        sent = body.model_fields_set
        editable = EDITABLE_WHEN_LOCKED if self.locked else PLAN_FIELDS
        for name in editable:
            if name in sent and getattr(body, name) is not None:
                plan[name] = getattr(body, name)
        if body.pay_in_advance is not None and not self.locked:
            plan["pay_in_advance"] = int(body.pay_in_advance)
        if body.bill_charges_monthly is not None and not self.locked:
            plan["bill_charges_monthly"] = int(body.bill_charges_monthly)
        if plan["interval"] not in ("yearly", "semiannual"):
            plan["bill_charges_monthly"] = 0
        if body.metadata is not None:
            plan["metadata"] = dump_json(body.metadata)
        if body.tax_codes is not None:
            plan["tax_ids"] = tax_ids_for_codes(self.store, self.org, body.tax_codes)
        if "minimum_commitment" in sent:
            self._apply_minimum_commitment(plan, body)
        for name in ("name", "code", "interval", "amount_cents", "amount_currency"):
            if plan[name] is None:
                self.errors.add(name, "value_is_mandatory")
        if plan["amount_currency"] is not None and plan["amount_currency"] not in CURRENCIES:
            self.errors.add("amount_currency", "value_is_invalid")

    def _apply_minimum_commitment(self, plan: Row, body: PlanInput) -> None:
        commitment = body.minimum_commitment
        if commitment is None:
            plan["minimum_commitment_id"] = None
            plan["minimum_commitment_amount_cents"] = None
            plan["minimum_commitment_invoice_display_name"] = None
            plan["minimum_commitment_tax_ids"] = []
            return
        if commitment.amount_cents is None or commitment.amount_cents <= 0:
            self.errors.add("minimum_commitment.amount_cents", "value_is_invalid")
        plan["minimum_commitment_id"] = plan["minimum_commitment_id"] or uuid.uuid4()
        plan["minimum_commitment_amount_cents"] = commitment.amount_cents
        plan["minimum_commitment_invoice_display_name"] = commitment.invoice_display_name
        if commitment.tax_codes is not None:
            plan["minimum_commitment_tax_ids"] = tax_ids_for_codes(
                self.store, self.org, commitment.tax_codes
            )

    def _apply_thresholds(
        self, change: PlanChange, old: PlanTree, inputs: Sequence[UsageThresholdInput]
    ) -> None:
        existing = {str(row["id"]): row for row in old.thresholds}
        kept: list[Row] = []
        for item in inputs:
            if item.amount_cents is None or item.amount_cents <= 0:
                self.errors.add("usage_thresholds.amount_cents", "value_is_invalid")
            columns = {
                "plan_id": change.tree.plan["id"],
                "threshold_display_name": item.threshold_display_name,
                "amount_cents": item.amount_cents or 0,
                "recurring": int(item.recurring),
            }
            current = existing.get(item.id or "")
            kept.append({**current, **columns} if current else new_row(self.org, **columns))
        if sum(row["recurring"] for row in kept) > 1:
            self.errors.add("usage_thresholds", "multiple_recurring_thresholds")
        fixed = [row["amount_cents"] for row in kept if not row["recurring"]]
        if len(set(fixed)) != len(fixed):
            self.errors.add("usage_thresholds.amount_cents", "value_already_exist")
        kept_ids = {row["id"] for row in kept}
        change.removed.thresholds = [row for row in old.thresholds if row["id"] not in kept_ids]
        change.tree.thresholds = kept

    def _apply_charges(
        self,
        change: PlanChange,
        old: PlanTree,
        inputs: Sequence[ChargeInput],
        partial: bool,
    ) -> None:
        existing = {str(row["id"]): row for row in old.charges}
        metrics = self._metrics_for(inputs, existing)
        charges: list[Row] = []
        filters: list[Row] = []
        for position, item in enumerate(inputs):
            current = existing.get(item.id or "")
            charge = self._charge_row(change.tree.plan, item, current, metrics, position)
            charges.append(charge)
            old_filters = [f for f in old.filters if f["charge_id"] == charge["id"]]
            metric = metrics.get(charge["billable_metric_id"])
            filters.extend(self._filter_rows(charge, item, old_filters, metric))
        if partial:
            listed = {charge["id"] for charge in charges}
            charges += [c for c in old.charges if c["id"] not in listed]
            filters += [f for f in old.filters if f["charge_id"] not in listed]
        charge_ids = {charge["id"] for charge in charges}
        filter_ids = {f["id"] for f in filters}
        change.removed.charges = [c for c in old.charges if c["id"] not in charge_ids]
        change.removed.filters = [f for f in old.filters if f["id"] not in filter_ids]
        change.tree.charges, change.tree.filters = charges, filters

    def _metrics_for(
        self, inputs: Sequence[ChargeInput], existing: Mapping[str, Row]
    ) -> dict[uuid.UUID, Row]:
        wanted: list[uuid.UUID] = []
        for item in inputs:
            if item.billable_metric_id is not None:
                try:
                    wanted.append(uuid.UUID(item.billable_metric_id))
                except ValueError:
                    raise NotFound("billable_metric") from None
            elif item.id is not None and item.id in existing:
                wanted.append(existing[item.id]["billable_metric_id"])
        metrics = rows_by_ids(self.store, "billable_metrics", self.org, wanted)
        if any(metric_id not in metrics for metric_id in wanted):
            raise NotFound("billable_metric")
        return metrics

    def _charge_row(
        self,
        plan: Row,
        item: ChargeInput,
        current: Row | None,
        metrics: Mapping[uuid.UUID, Row],
        position: int,
    ) -> Row:
        if current is None and item.billable_metric_id is None:
            self.errors.add("billable_metric_id", "value_is_mandatory")
        if current is not None and self.locked:
            item = ChargeInput.model_validate(
                item.model_dump(exclude_unset=True, include=CHARGE_FIELDS_WHEN_LOCKED)
            )
        charge = dict(current) if current else new_row(self.org, **_charge_defaults(plan))
        if item.billable_metric_id is not None:
            charge["billable_metric_id"] = uuid.UUID(item.billable_metric_id)
        charge["position"] = position
        for name in ("code", "charge_model", "invoice_display_name", "regroup_paid_fees"):
            if name in item.model_fields_set:
                charge[name] = getattr(item, name)
        for name in ("pay_in_advance", "prorated", "invoiceable"):
            if getattr(item, name) is not None:
                charge[name] = int(getattr(item, name))
        if item.min_amount_cents is not None:
            charge["min_amount_cents"] = item.min_amount_cents
        if item.tax_codes is not None:
            charge["tax_ids"] = tax_ids_for_codes(self.store, self.org, item.tax_codes)
        model = charge["charge_model"]
        if model is None:
            self.errors.add("charge_model", "value_is_mandatory")
            return charge
        properties = (
            item.properties if item.properties is not None else load_json(charge["properties"], {})
        )
        metric = metrics.get(charge["billable_metric_id"])
        aggregation = metric["aggregation_type"] if metric else None
        if not item.filters or item.properties is not None:
            check_properties(model, properties, aggregation, self.errors)
        charge["properties"] = dump_json(kept_properties(model, properties))
        charge["grouped_by"] = grouping_keys(properties)
        self._check_charge_rules(charge, metric)
        return charge

    def _check_charge_rules(self, charge: Row, metric: Row | None) -> None:
        if metric is None:
            return
        aggregation = metric["aggregation_type"]
        if charge["pay_in_advance"] and (
            aggregation in NOT_IN_ADVANCE_AGGREGATIONS or charge["charge_model"] == "volume"
        ):
            self.errors.add("charge_model", "invalid_aggregation_type_or_charge_model")
        # Like Lago: only recurring metrics prorate, and a weighted sum is already weighed by time.
        if charge["prorated"] and not (
            metric["recurring"]
            and aggregation != "weighted_sum_agg"
            and (
                charge["charge_model"] == "standard"
                or (
                    charge["charge_model"] in ("graduated", "volume")
                    and not charge["pay_in_advance"]
                )
            )
        ):
            self.errors.add("prorated", "invalid_billable_metric_or_charge_model")
        if charge["pay_in_advance"] and charge["min_amount_cents"] > 0:
            self.errors.add("min_amount_cents", "not_compatible_with_pay_in_advance")

    def _filter_rows(
        self, charge: Row, item: ChargeInput, old_filters: list[Row], metric: Row | None
    ) -> list[Row]:
        if item.filters is None:
            return old_filters
        by_values = {_values_key(f["values"]): f for f in old_filters}
        by_id = {str(f["id"]): f for f in old_filters}
        rows = []
        for position, entry in enumerate(item.filters):
            self._check_filter(entry, metric, charge["charge_model"])
            columns = {
                "charge_id": charge["id"],
                "plan_id": charge["plan_id"],
                "position": position,
                "invoice_display_name": entry.invoice_display_name,
                "properties": dump_json(
                    kept_properties(charge["charge_model"] or "standard", entry.properties)
                ),
                "grouped_by": grouping_keys(entry.properties),
                "values": {key: list(dict.fromkeys(v)) for key, v in entry.values.items()},
            }
            current = by_id.get(entry.id or "") or by_values.get(_values_key(columns["values"]))
            rows.append({**current, **columns} if current else new_row(self.org, **columns))
        return rows

    def _check_filter(
        self, entry: ChargeFilterInput, metric: Row | None, model: str | None
    ) -> None:
        if model is not None:
            check_properties(
                model, entry.properties, metric["aggregation_type"] if metric else None, self.errors
            )
        allowed: Mapping[str, Sequence[str]] = metric["filters"] if metric else {}
        for key, values in entry.values.items():
            if key not in allowed or any(
                v != ALL_FILTER_VALUES and v not in allowed[key] for v in values
            ):
                self.errors.add("filters.values", "value_is_invalid")


def _values_key(values: Mapping[str, Sequence[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted((key, tuple(sorted(v))) for key, v in values.items()))


def _charge_defaults(plan: Row) -> dict[str, Any]:
    return {
        "plan_id": plan["id"],
        "billable_metric_id": None,
        "parent_id": None,
        "code": None,
        "position": 0,
        "charge_model": None,
        "properties": "{}",
        "grouped_by": [],
        "pay_in_advance": 0,
        "invoiceable": 1,
        "regroup_paid_fees": None,
        "prorated": 0,
        "min_amount_cents": 0,
        "invoice_display_name": None,
        "tax_ids": [],
    }


def save_plan(store: CatalogStore, change: PlanChange, actor: str) -> None:
    """Children first, the plan last: until the plan row exists nothing points at them."""
    removed = change.removed
    store.delete("charge_filters", removed.filters, changed_by=actor)
    store.delete("charges", removed.charges, changed_by=actor)
    store.delete("usage_thresholds", removed.thresholds, changed_by=actor)
    tree = change.tree
    store.write("charge_filters", tree.filters, changed_by=actor)
    store.write("charges", tree.charges, changed_by=actor)
    store.write("usage_thresholds", tree.thresholds, changed_by=actor)
    store.write("plans", [tree.plan], changed_by=actor)


def delete_plan(store: CatalogStore, tree: PlanTree, actor: str) -> None:
    """Plan first, so the plan disappears before its children."""
    store.delete("plans", [tree.plan], changed_by=actor)
    store.delete("charge_filters", tree.filters, changed_by=actor)
    store.delete("charges", tree.charges, changed_by=actor)
    store.delete("usage_thresholds", tree.thresholds, changed_by=actor)


def load_trees(store: CatalogStore, organization_id: uuid.UUID, plans: list[Row]) -> list[PlanTree]:
    """The children of these plans, fetched with one query per table."""
    if not plans:
        return []
    parameters = {"plans": [plan["id"] for plan in plans]}
    where = "plan_id IN {plans:Array(UUID)}"
    order = "position, created_at, id"
    charges = store.select("charges", organization_id, where, parameters, order_by=order)
    filters = store.select("charge_filters", organization_id, where, parameters, order_by=order)
    thresholds = store.select("usage_thresholds", organization_id, where, parameters)
    return [
        PlanTree(
            plan,
            [c for c in charges if c["plan_id"] == plan["id"]],
            [f for f in filters if f["plan_id"] == plan["id"]],
            [t for t in thresholds if t["plan_id"] == plan["id"]],
        )
        for plan in plans
    ]


def clone_tree(organization_id: uuid.UUID, parent: PlanTree) -> PlanTree:
    """A fresh copy of a plan for one subscription's overrides (Lago's child plan)."""
    plan = {
        **new_row(organization_id),
        **_bookkeeping_free(parent.plan),
        "parent_id": parent.plan["id"],
    }
    if plan["minimum_commitment_id"] is not None:
        plan["minimum_commitment_id"] = uuid.uuid4()
    charge_ids = {charge["id"]: uuid.uuid4() for charge in parent.charges}
    charges = [
        {
            **new_row(organization_id),
            **_bookkeeping_free(charge),
            "id": charge_ids[charge["id"]],
            "plan_id": plan["id"],
            "parent_id": charge["id"],
        }
        for charge in parent.charges
    ]
    filters = [
        {
            **new_row(organization_id),
            **_bookkeeping_free(f),
            "id": uuid.uuid4(),
            "plan_id": plan["id"],
            "charge_id": charge_ids[f["charge_id"]],
        }
        for f in parent.filters
    ]
    thresholds = [
        {
            **new_row(organization_id),
            **_bookkeeping_free(t),
            "id": uuid.uuid4(),
            "plan_id": plan["id"],
        }
        for t in parent.thresholds
    ]
    return PlanTree(plan, charges, filters, thresholds)


def _bookkeeping_free(row: Row) -> Row:
    bookkeeping = {
        "id",
        "created_at",
        "updated_at",
        "deleted_at",
        "changed_by",
        "version",
        "is_deleted",
    }
    return {key: value for key, value in row.items() if key not in bookkeeping}


def present_trees(
    store: CatalogStore, organization_id: uuid.UUID, trees: list[PlanTree]
) -> list[dict[str, Any]]:
    charges = [charge for tree in trees for charge in tree.charges]
    metric_ids = [charge["billable_metric_id"] for charge in charges]
    metrics = rows_by_ids(store, "billable_metrics", organization_id, metric_ids)
    plans = [tree.plan for tree in trees]
    taxes = taxes_by_id(store, organization_id, [*plans, *charges])
    taxes.update(taxes_by_id(store, organization_id, plans, "minimum_commitment_tax_ids"))
    return [
        {
            **present_plan_fields(tree.plan),
            "charges": [
                present_charge(
                    charge,
                    [f for f in tree.filters if f["charge_id"] == charge["id"]],
                    metrics,
                    present_taxes(taxes, charge["tax_ids"]),
                )
                for charge in tree.charges
            ],
            "minimum_commitment": present_minimum_commitment(
                tree.plan, present_taxes(taxes, tree.plan["minimum_commitment_tax_ids"])
            ),
            "usage_thresholds": [
                present_threshold(t)
                for t in sorted(tree.thresholds, key=lambda t: (t["recurring"], t["amount_cents"]))
            ],
            "taxes": present_taxes(taxes, tree.plan["tax_ids"]),
        }
        for tree in trees
    ]
