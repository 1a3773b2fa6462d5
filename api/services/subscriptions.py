"""Subscription lifecycle with Lago's semantics.

- Creating with a new external_id starts a subscription: active when subscription_at is past or
  now, pending when it is in the future.
- Creating with the external_id of a live subscription and another plan changes plan: an
  upgrade (new yearly amount >= old) terminates the old subscription now and starts the new one
  now; a downgrade creates the new one pending, taking over when the old period ends. Both keep
  the old subscription_at and billing_time (the anniversary is inherited).
- A plan's trial runs from the first start of the customer's subscriptions with that
  external_id: changing plan or subscribing again under the same id does not restart it.
- Time-driven transitions (pending start, downgrade takeover, ending_at) are applied when an
  organization's subscriptions are next read or written (``apply_due_transitions``), so the
  stored status is never stale for API callers; orchestration may call it on a schedule too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from api.deps import Caller
from api.errors import FieldErrors, NotFound
from api.schemas.customers import CustomerInput, customer_columns
from api.schemas.plans import PlanInput, PlanTree, yearly_amount_cents
from api.schemas.subscriptions import (
    PlanOverridesInput,
    SubscriptionInput,
    present_subscription,
    utc,
)
from api.services.periods import current_period, next_period_start
from api.services.plans import PlanBuilder, clone_tree, load_trees, save_plan
from api.storage.catalog import CatalogStore, Row, new_row, utc_now
from api.storage.lookups import find_by, latest_by_ids, rows_by_ids
from api.storage.subscriptions import end_subscription


def subscription_defaults() -> dict[str, Any]:
    return {
        "name": None,
        "billing_time": "calendar",
        "status": "pending",
        "started_at": None,
        "ending_at": None,
        "terminated_at": None,
        "canceled_at": None,
        "trial_ended_at": None,
        "previous_subscription_id": None,
        "next_subscription_id": None,
        "on_termination_credit_note": None,
        "on_termination_invoice": "generate",
    }


def initial_started_at(store: CatalogStore, subscription: Row, started_at: datetime) -> datetime:
    """When the customer's first subscription with this external id started (this one's start
    when it is the first): Lago counts a plan's trial from there, so an upgrade, a downgrade or
    a resubscription under the same external id does not start a new trial."""
    first = store.select(
        "subscriptions",
        subscription["organization_id"],
        "customer_id = {c:UUID} AND external_id = {e:String} AND started_at IS NOT NULL",
        {"c": subscription["customer_id"], "e": subscription["external_id"]},
        order_by="started_at",
        limit=1,
    )
    return min(first[0]["started_at"], started_at) if first else started_at


def _activate(subscription: Row, plan: Row, started_at: datetime, trial_from: datetime) -> Row:
    trial_days = plan["trial_period"]
    trial_end = trial_from + timedelta(days=float(trial_days)) if trial_days else None
    return {
        **subscription,
        "status": "active",
        "started_at": started_at,
        "trial_ended_at": trial_end,
    }


def downgrade_date(subscription: Row, plan: Row) -> datetime:
    """When a pending downgrade takes over: the start of the old subscription's next period."""
    return next_period_start(
        plan["interval"], subscription["billing_time"], subscription["subscription_at"], utc_now()
    )


def apply_due_transitions(store: CatalogStore, organization_id: uuid.UUID) -> None:
    """Write the transitions whose time has come: pending starts, ending_at terminations, and
    downgrades taking over at the end of the period in which they were requested."""
    now = utc_now()
    # Only rows that may be due: an ending date passed, a start passed, or a downgrade
    # waiting for its predecessor's period to end (few per organization).
    candidates = store.select(
        "subscriptions",
        organization_id,
        "status = 'active' AND ending_at <= {now:DateTime64(3, 'UTC')}"
        " OR status = 'pending' AND (previous_subscription_id IS NOT NULL"
        " OR subscription_at <= {now:DateTime64(3, 'UTC')})",
        {"now": now},
        order_by="created_at",
    )
    if not candidates:
        return
    previous_ids = [
        r["previous_subscription_id"] for r in candidates if r["previous_subscription_id"]
    ]
    by_id = {
        **rows_by_ids(store, "subscriptions", organization_id, previous_ids),
        **{row["id"]: row for row in candidates},
    }
    plans = rows_by_ids(store, "plans", organization_id, [row["plan_id"] for row in by_id.values()])
    changed: dict[uuid.UUID, Row] = {}
    for row in candidates:
        plan = plans.get(row["plan_id"])
        if plan is None:
            continue
        if row["status"] == "active":
            if row["ending_at"] is not None and row["ending_at"] <= now:
                changed[row["id"]] = {**end_subscription(row), "terminated_at": row["ending_at"]}
        elif row["previous_subscription_id"] is None:
            if row["subscription_at"] <= now:
                start = row["subscription_at"]
                changed[row["id"]] = _activate(
                    row, plan, start, initial_started_at(store, row, start)
                )
        else:
            previous = by_id.get(row["previous_subscription_id"])
            previous_plan = plans.get(previous["plan_id"]) if previous else None
            if previous is None or previous_plan is None or previous["status"] != "active":
                continue
            takeover = next_period_start(
                previous_plan["interval"],
                previous["billing_time"],
                previous["subscription_at"],
                row["created_at"],
            )
            if takeover <= now:
                changed[previous["id"]] = {**end_subscription(previous), "terminated_at": takeover}
                changed[row["id"]] = _activate(
                    row, plan, takeover, initial_started_at(store, row, takeover)
                )
    store.write("subscriptions", list(changed.values()), changed_by="system")


def cancel_outdated_downgrades(
    store: CatalogStore, organization_id: uuid.UUID, plan: Row, actor: str
) -> None:
    """After a plan's amount changed, pending downgrades that are no longer downgrades are
    canceled, as Lago does: to this plan when it now costs more than the plan left, from this
    plan when it now costs less than the plan waiting."""
    on_plan = store.select(
        "subscriptions",
        organization_id,
        "plan_id = {p:UUID} AND status IN ('active', 'pending')",
        {"p": plan["id"]},
    )
    linked_ids = [
        row["previous_subscription_id"]
        if row["status"] == "pending"
        else row["next_subscription_id"]
        for row in on_plan
    ]
    linked = rows_by_ids(store, "subscriptions", organization_id, [i for i in linked_ids if i])
    plans = rows_by_ids(
        store, "plans", organization_id, [row["plan_id"] for row in linked.values()]
    )
    canceled = []
    for row in on_plan:
        if row["status"] == "pending" and row["previous_subscription_id"] in linked:
            left = plans.get(linked[row["previous_subscription_id"]]["plan_id"])
            if left is not None and plan["amount_cents"] > left["amount_cents"]:
                canceled.append(end_subscription(row))
        elif row["status"] == "active" and row["next_subscription_id"] in linked:
            waiting = linked[row["next_subscription_id"]]
            waiting_plan = plans.get(waiting["plan_id"])
            if (
                waiting["status"] == "pending"
                and waiting_plan is not None
                and plan["amount_cents"] < waiting_plan["amount_cents"]
            ):
                canceled.append(end_subscription(waiting))
    store.write("subscriptions", canceled, changed_by=actor)


class SubscriptionService:
    def __init__(self, store: CatalogStore, caller: Caller) -> None:
        self.store = store
        self.caller = caller
        self.org = caller.organization_id
        # Plans and customers this request already holds, so presenting does not re-read them.
        self.known: dict[uuid.UUID, Row] = {}

    # --- time-driven transitions ---------------------------------------------------------------
    def apply_due_transitions(self) -> None:
        apply_due_transitions(self.store, self.org)

    # --- create, change plan -------------------------------------------------------------------
    def create(self, body: SubscriptionInput) -> Row:
        errors = body.field_errors()
        for name in ("external_customer_id", "plan_code", "external_id"):
            if getattr(body, name) is None:
                errors.add(name, "value_is_mandatory")
        subscription_at = utc(body.subscription_at) or utc_now()
        ending_at = utc(body.ending_at)
        if ending_at is not None and ending_at <= subscription_at:
            errors.add("ending_at", "invalid_date")
        errors.raise_if_any()
        parent = self._parent_plan(str(body.plan_code))
        locks = self.store.locks
        with locks.hold(self.org, "subscriptions"), locks.hold(self.org, "customers"):
            self.apply_due_transitions()
            customer, customer_changed = self._customer_for(str(body.external_customer_id), parent)
            current = self._live_by_external_id(str(body.external_id))
            if current is not None and current["customer_id"] != customer["id"]:
                raise_field("external_id", "value_already_exist")
            overrides = body.plan_overrides
            if overrides and overrides.amount_currency not in (None, customer["currency"]):
                raise_field("amount_currency", "currencies_does_not_match")
            # Every check passed: only now write (customer, override plan, subscription).
            if customer_changed:
                self.store.write("customers", [customer], changed_by=self.caller.actor)
            plan = self._plan_for(parent, overrides)
            self.known.update({row["id"]: row for row in (parent, plan, customer)})
            if current is None:
                row = self._start(body, customer, plan, subscription_at, ending_at)
            else:
                row = self._change_plan(current, body, parent, plan)
        return row

    def _parent_plan(self, code: str) -> Row:
        return find_by(
            self.store, "plans", self.org, "code", code, resource="plan", where="parent_id IS NULL"
        )

    def _customer_for(self, external_id: str, plan: Row) -> tuple[Row, bool]:
        """The customer, created on the fly as Lago does, its currency set by its first plan;
        and whether that changed anything (written once every check has passed)."""
        customer = self.store.first(
            "customers", self.org, "external_id = {e:String}", {"e": external_id}
        )
        if customer is None:
            customer = new_row(self.org, **_new_customer_columns(external_id))
            return {**customer, "currency": plan["amount_currency"]}, True
        if customer["currency"] is None:
            return {**customer, "currency": plan["amount_currency"]}, True
        if customer["currency"] != plan["amount_currency"]:
            raise_field("currency", "currencies_does_not_match")
        return customer, False

    def _live_by_external_id(self, external_id: str) -> Row | None:
        rows = self.store.select(
            "subscriptions",
            self.org,
            # The head of the chain: the active one, or a not-yet-started first subscription.
            "external_id = {e:String} AND (status = 'active'"
            " OR status = 'pending' AND previous_subscription_id IS NULL)",
            {"e": external_id},
            order_by="created_at",
        )
        return rows[0] if rows else None

    def _plan_for(self, parent: Row, overrides: PlanOverridesInput | None) -> Row:
        """The plan to bill: the catalog plan, or a child plan carrying the overrides."""
        if overrides is None:
            return parent
        child = clone_tree(self.org, load_trees(self.store, self.org, [parent])[0])
        body = _override_body(overrides, child)
        change = PlanBuilder(self.store, self.caller).build(body, child, partial_charges=True)
        save_plan(self.store, change, self.caller.actor)
        return change.tree.plan

    def _start(
        self,
        body: SubscriptionInput,
        customer: Row,
        plan: Row,
        subscription_at: datetime,
        ending_at: datetime | None,
    ) -> Row:
        row = new_row(
            self.org,
            **subscription_defaults(),
            external_id=body.external_id,
            customer_id=customer["id"],
            plan_id=plan["id"],
            subscription_at=subscription_at,
        )
        row.update(
            name=body.name, billing_time=body.billing_time or "calendar", ending_at=ending_at
        )
        if subscription_at <= utc_now():
            trial_from = initial_started_at(self.store, row, subscription_at)
            row = _activate(row, plan, subscription_at, trial_from)
        self.store.write("subscriptions", [row], changed_by=self.caller.actor)
        return row

    def _change_plan(
        self, current: Row, body: SubscriptionInput, parent: Row, new_plan: Row
    ) -> Row:
        plan_id = new_plan["id"]
        old_plan = rows_by_ids(self.store, "plans", self.org, [current["plan_id"]])[
            current["plan_id"]
        ]
        same_plan = parent["id"] in (old_plan["id"], old_plan["parent_id"])
        if same_plan and body.plan_overrides is None:
            return current
        if current["status"] == "pending":
            # Not started yet: Lago swaps the plan in place.
            row = {**current, "plan_id": plan_id, "name": body.name or current["name"]}
            self.store.write("subscriptions", [row], changed_by=self.caller.actor)
            return row
        self._cancel_pending_next(current)
        successor = new_row(
            self.org,
            **subscription_defaults(),
            external_id=current["external_id"],
            customer_id=current["customer_id"],
            plan_id=plan_id,
            subscription_at=current["subscription_at"],
        )
        successor.update(
            name=body.name or current["name"],
            billing_time=current["billing_time"],
            ending_at=current["ending_at"],
            previous_subscription_id=current["id"],
        )
        if yearly_amount_cents(new_plan) >= yearly_amount_cents(old_plan):
            ended = {**end_subscription(current), "next_subscription_id": successor["id"]}
            started_at = ended["terminated_at"]
            trial_from = initial_started_at(self.store, successor, started_at)
            successor = _activate(successor, new_plan, started_at, trial_from)
            self.store.write("subscriptions", [successor, ended], changed_by=self.caller.actor)
            return successor
        waiting = {**current, "next_subscription_id": successor["id"]}
        self.store.write("subscriptions", [successor, waiting], changed_by=self.caller.actor)
        return waiting

    def _cancel_pending_next(self, current: Row) -> None:
        if current["next_subscription_id"] is None:
            return
        pending = self.store.first(
            "subscriptions",
            self.org,
            "id = {id:UUID} AND status = 'pending'",
            {"id": current["next_subscription_id"]},
        )
        if pending is not None:
            self.store.write(
                "subscriptions", [end_subscription(pending)], changed_by=self.caller.actor
            )

    # --- update, terminate ---------------------------------------------------------------------
    def update(self, current: Row, body: SubscriptionInput) -> Row:
        errors = body.field_errors()
        row = dict(current)
        if "name" in body.model_fields_set:
            row["name"] = body.name
        if "ending_at" in body.model_fields_set:
            row["ending_at"] = utc(body.ending_at)
        if body.subscription_at is not None and current["status"] == "pending":
            row["subscription_at"] = utc(body.subscription_at)
        if row["ending_at"] is not None and row["ending_at"] <= row["subscription_at"]:
            errors.add("ending_at", "invalid_date")
        errors.raise_if_any()
        if body.plan_overrides is not None:
            row["plan_id"] = self._override_plan(current, body.plan_overrides)
        self.store.write("subscriptions", [row], changed_by=self.caller.actor)
        return row

    def _override_plan(self, current: Row, overrides: PlanOverridesInput) -> uuid.UUID:
        plan = rows_by_ids(self.store, "plans", self.org, [current["plan_id"]])[current["plan_id"]]
        if plan["parent_id"] is None:
            return uuid.UUID(str(self._plan_for(plan, overrides)["id"]))
        tree = load_trees(self.store, self.org, [plan])[0]
        body = _override_body(overrides, tree)
        change = PlanBuilder(self.store, self.caller).build(body, tree, partial_charges=True)
        save_plan(self.store, change, self.caller.actor)
        return uuid.UUID(str(plan["id"]))

    def terminate(self, current: Row, credit_note: str | None, invoice: str) -> Row:
        self._cancel_pending_next(current)
        ended = end_subscription(
            current, on_termination_credit_note=credit_note, on_termination_invoice=invoice
        )
        self.store.write("subscriptions", [ended], changed_by=self.caller.actor)
        return ended

    # --- presentation --------------------------------------------------------------------------
    def _rows(self, table: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Row]:
        """Rows by id: those already held, the others read (deleted ones included)."""
        missing = [row_id for row_id in ids if row_id not in self.known]
        found = latest_by_ids(self.store, table, self.org, missing)
        return {**{i: self.known[i] for i in ids if i in self.known}, **found}

    def present(self, rows: Sequence[Row]) -> list[dict[str, Any]]:
        related_ids = [
            r[k] for r in rows for k in ("previous_subscription_id", "next_subscription_id")
        ]
        related = rows_by_ids(self.store, "subscriptions", self.org, [i for i in related_ids if i])
        plan_ids = [r["plan_id"] for r in [*rows, *related.values()]]
        plans = self._rows("plans", plan_ids)
        customers = self._rows("customers", [r["customer_id"] for r in rows])
        now = utc_now()

        def code(subscription: Row | None) -> str | None:
            plan = plans.get(subscription["plan_id"]) if subscription else None
            return plan["code"] if plan else None

        presented = []
        for row in rows:
            plan = plans.get(row["plan_id"])
            following = (
                related.get(row["next_subscription_id"]) if row["next_subscription_id"] else None
            )
            if following is not None and following["status"] == "canceled":
                following = None  # a canceled downgrade no longer follows
            pending_downgrade = following is not None and following["status"] == "pending"
            period = None
            if plan is not None and row["status"] == "active":
                period = current_period(
                    plan["interval"], row["billing_time"], row["subscription_at"], now
                )
            presented.append(
                present_subscription(
                    row,
                    customer=customers.get(row["customer_id"]),
                    plan_code=code(row),
                    plan=plan,
                    previous_plan_code=code(related.get(row["previous_subscription_id"]))
                    if row["previous_subscription_id"]
                    else None,
                    next_plan_code=code(following),
                    downgrade_plan_date=downgrade_date(row, plan)
                    if pending_downgrade and plan
                    else None,
                    period=period,
                )
            )
        return presented


def _override_body(overrides: PlanOverridesInput, child: PlanTree) -> PlanInput:
    """The overrides as a plan request on the child plan: charges are named by the id of the
    parent plan's charge (as in Lago), which the child's charge copies record in parent_id."""
    body = PlanInput.model_validate(overrides.model_dump(exclude_unset=True))
    child_ids = {str(charge["parent_id"]): str(charge["id"]) for charge in child.charges}
    for charge in body.charges or []:
        if charge.id in child_ids:
            charge.id = child_ids[charge.id]
    return body


def raise_field(field: str, code: str) -> None:
    errors = FieldErrors()
    errors.add(field, code)
    errors.raise_if_any()


def _new_customer_columns(external_id: str) -> dict[str, Any]:
    return {
        "external_id": external_id,
        **customer_columns(CustomerInput(external_id=external_id), None),
    }


def find_subscription(
    store: CatalogStore, organization_id: uuid.UUID, external_id: str, status: str | None
) -> Row:
    """The subscription with this external_id: of the given status, else the live one, else
    the most recent."""
    condition = "external_id = {e:String}"
    parameters: dict[str, Any] = {"e": external_id}
    if status is not None:
        condition += " AND status = {s:String}"
        parameters["s"] = status
    rows = store.select(
        "subscriptions",
        organization_id,
        condition,
        parameters,
        order_by="status = 'active' DESC, status = 'pending' DESC, created_at DESC",
        limit=1,
    )
    if not rows:
        raise NotFound("subscription")
    return rows[0]
