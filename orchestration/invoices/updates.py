"""State changes of existing invoices: a new row per change, never an update in place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from clickhouse_connect.driver.client import Client

from orchestration.invoices.ids import RANK_STEP, STATUS_RANK, UPDATED_RANK, now_micros

IDS_PER_STATEMENT = 2000

# Columns a state change may set; everything else is copied from the current row.
CHANGEABLE = frozenset(
    {
        "status",
        "payment_status",
        "total_paid_amount_cents",
        "provider_sync_status",
        "provider_error",
        "voided_at",
        "finalized_at",
    }
)


def update_invoices(
    client: Client, organization_id: UUID, invoice_ids: Sequence[UUID], **changes: Any
) -> None:
    """Copy the current row of each invoice with ``changes`` applied and a later version.

    Changing ``status`` moves the row to that status's rank; other changes of a finalized
    invoice move it to the "updated" rank (see ``ids``), where the latest change wins.
    """
    unknown = set(changes) - CHANGEABLE
    if unknown:
        raise ValueError(f"not changeable on an invoice: {sorted(unknown)}")
    micros = now_micros()
    replaced = [f"%(change_{column})s AS {column}" for column in changes]
    if "status" in changes:
        version = f"{STATUS_RANK[changes['status']] * RANK_STEP + micros}"
    else:
        rank = f"greatest(intDiv(version, {RANK_STEP}), {UPDATED_RANK})"
        version = f"{rank} * {RANK_STEP} + {micros}"
    replaced += ["now64(3) AS updated_at", f"toUInt64({version}) AS version"]
    # Batches keep each statement well below the server's max_query_size.
    for start in range(0, len(invoice_ids), IDS_PER_STATEMENT):
        batch = invoice_ids[start : start + IDS_PER_STATEMENT]
        client.command(
            f"""
            INSERT INTO invoices
            SELECT * REPLACE ({", ".join(replaced)})
            FROM invoices FINAL
            WHERE organization_id = %(organization_id)s AND id IN %(ids)s
            """,
            parameters={
                "organization_id": organization_id,
                "ids": [str(invoice_id) for invoice_id in batch],
                **{f"change_{column}": value for column, value in changes.items()},
            },
        )
