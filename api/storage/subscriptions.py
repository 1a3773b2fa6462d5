"""Subscription state changes shared by several routes (terminate, cancel)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from api.storage.catalog import CatalogStore, Row, utc_now

LIVE_STATUSES = ("active", "pending")


def end_subscription(
    row: Row,
    *,
    on_termination_credit_note: str | None = None,
    on_termination_invoice: str = "generate",
) -> Row:
    """The next version of a subscription that stops now.

    A pending subscription that never started is canceled; an active one is terminated, its
    termination day counting as used (the rating models bill up to terminated_at).
    """
    now = utc_now()
    if row["status"] == "pending":
        return {**row, "status": "canceled", "canceled_at": now}
    return {
        **row,
        "status": "terminated",
        "terminated_at": now,
        "on_termination_credit_note": on_termination_credit_note,
        "on_termination_invoice": on_termination_invoice,
    }


def live_subscriptions(
    store: CatalogStore, organization_id: uuid.UUID, column: str, ids: Sequence[uuid.UUID]
) -> list[Row]:
    """Active and pending subscriptions whose ``column`` (customer_id, plan_id) is in ``ids``."""
    if not ids:
        return []
    return store.select(
        "subscriptions",
        organization_id,
        f"{column} IN {{ids:Array(UUID)}} AND status IN {{live:Array(String)}}",
        {"ids": list(ids), "live": list(LIVE_STATUSES)},
    )


def end_all(
    store: CatalogStore,
    organization_id: uuid.UUID,
    column: str,
    ids: Sequence[uuid.UUID],
    actor: str,
) -> None:
    """Terminate or cancel every live subscription of these customers or plans."""
    rows = live_subscriptions(store, organization_id, column, ids)
    store.write("subscriptions", [end_subscription(row) for row in rows], changed_by=actor)
