"""Refunds of credit notes at the payment provider that collected the invoice.

A credit note with ``refund_amount_cents`` starts ``refund_status = pending``. When its invoice
was pushed to a provider, the refund is asked of that provider at once (Stripe: a Refund of the
invoice's payment, idempotency key from the credit note id); the provider's refund id and the
outcome are recorded in ``provider_references`` (object type ``credit_note``) and the status
moves to what the provider says. A call that fails after the provider client's retries leaves
``refund_status = failed`` with the error, and is tried again by the ``credit_note_refunds``
job; a refund the provider itself failed (it has a provider id) is not retried automatically.
Provider webhooks move the status later (a pending refund settling, a refund failing).

Invoices no provider collected are refunded by hand: the status stays pending until the API
records the outcome. A status change is a new credit note row, never an update in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from clickhouse_connect.driver.client import Client

from orchestration.invoices.ids import now_micros
from orchestration.invoices.payments import record_reference
from orchestration.stripe.provider import (
    PaymentProvider,
    ProviderError,
    RefundRequest,
    RefundUpdate,
)

CHANGEABLE = frozenset({"refund_status"})


@dataclass(frozen=True)
class RefundOutcome:
    organization_id: UUID
    credit_note_id: UUID
    status: str
    error: str | None = None


def update_credit_notes(
    client: Client, organization_id: UUID, note_ids: list[UUID], **changes: Any
) -> None:
    """Copy the current row of each credit note with ``changes`` applied and a later version."""
    unknown = set(changes) - CHANGEABLE
    if unknown:
        raise ValueError(f"not changeable on a credit note: {sorted(unknown)}")
    replaced = [f"%(change_{column})s AS {column}" for column in changes]
    replaced += ["now64(3) AS updated_at", f"toUInt64({now_micros()}) AS version"]
    client.command(
        f"""
        INSERT INTO credit_notes
        SELECT * REPLACE ({", ".join(replaced)})
        FROM credit_notes FINAL
        WHERE organization_id = %(organization_id)s AND id IN %(ids)s
        """,
        parameters={
            "organization_id": organization_id,
            "ids": [str(note_id) for note_id in note_ids],
            **{f"change_{column}": value for column, value in changes.items()},
        },
    )


def _note(client: Client, organization_id: UUID, note_id: UUID) -> dict[str, Any] | None:
    rows = list(
        client.query(
            """
            SELECT n.id AS id, n.organization_id AS organization_id, n.invoice_id AS invoice_id,
                   n.currency AS currency, n.refund_amount_cents AS refund_amount_cents,
                   ifNull(n.refund_status, '') AS refund_status,
                   ifNull(ref.provider, '') AS provider,
                   ifNull(ref.provider_object_id, '') AS provider_invoice_id
            FROM credit_notes AS n FINAL
            LEFT JOIN (
                SELECT object_id, argMax(provider, updated_at) AS provider,
                       argMax(provider_object_id, updated_at) AS provider_object_id
                FROM provider_references FINAL
                WHERE organization_id = %(org)s AND object_type = 'invoice'
                GROUP BY object_id
            ) AS ref ON ref.object_id = n.invoice_id
            WHERE n.organization_id = %(org)s AND n.id = %(id)s
            """,
            parameters={"org": organization_id, "id": note_id},
        ).named_results()
    )
    return rows[0] if rows else None


def refund_credit_note(
    client: Client,
    providers: Mapping[str, PaymentProvider],
    organization_id: UUID,
    note_id: UUID,
) -> RefundOutcome | None:
    """Ask the invoice's provider for the credit note's refund; None when there is nothing
    to send (no refund, already succeeded, or an invoice no provider collected)."""
    note = _note(client, organization_id, note_id)
    if note is None or note["refund_amount_cents"] <= 0 or note["refund_status"] == "succeeded":
        return None
    if not note["provider_invoice_id"]:
        return None
    provider = providers.get(note["provider"])
    error: str | None = None
    if provider is None:
        status, error = "failed", f"{note['provider']} is not configured"
        record_reference(client, organization_id, note["provider"], "credit_note", note_id,
                         "", status, error)  # fmt: skip
    else:
        request = RefundRequest(
            organization_id,
            note_id,
            note["invoice_id"],
            note["provider_invoice_id"],
            note["refund_amount_cents"],
            note["currency"],
        )
        try:
            refund = provider.refund(request)
        except ProviderError as failure:
            status, error = "failed", str(failure)
            record_reference(client, organization_id, provider.name, "credit_note", note_id,
                             "", status, error)  # fmt: skip
        else:
            status = refund.status
            record_reference(client, organization_id, provider.name, "credit_note", note_id,
                             refund.provider_refund_id, status)  # fmt: skip
    if status != note["refund_status"]:
        update_credit_notes(client, organization_id, [note_id], refund_status=status)
    return RefundOutcome(organization_id, note_id, status, error)


def retry_refunds(client: Client, providers: Mapping[str, PaymentProvider]) -> list[RefundOutcome]:
    """Refunds the provider never accepted: our call failed, or a crash came before it."""
    rows = client.query(
        """
        SELECT n.organization_id, n.id FROM credit_notes AS n FINAL
        WHERE n.refund_amount_cents > 0 AND n.refund_status IN ('pending', 'failed')
          AND (n.organization_id, n.invoice_id) IN (
            SELECT organization_id, object_id FROM provider_references FINAL
            WHERE object_type = 'invoice' AND provider_object_id != ''
          )
          AND (n.organization_id, n.id) NOT IN (
            SELECT organization_id, object_id FROM provider_references FINAL
            WHERE object_type = 'credit_note' AND provider_object_id != ''
          )
        ORDER BY n.created_at
        """
    ).result_rows
    outcomes = [refund_credit_note(client, providers, org, note_id) for org, note_id in rows]
    return [outcome for outcome in outcomes if outcome is not None]


def apply_refund_updates(
    client: Client, provider: str, updates: Iterable[RefundUpdate]
) -> list[RefundOutcome]:
    """Statuses a provider webhook reports; the changed ones. Events may arrive in any order,
    so only the moves a refund can make apply: pending to an outcome, succeeded to failed (a
    refund to a closed card fails after succeeding). ``failed`` is final here; the API can
    still record another outcome by hand."""
    changed = []
    for update in updates:
        note = _note(client, update.organization_id, update.credit_note_id)
        if note is None or not _webhook_may_move(note["refund_status"], update.status):
            continue
        organization_id, note_id = update.organization_id, update.credit_note_id
        record_reference(client, organization_id, provider, "credit_note", note_id,
                         update.provider_refund_id, update.status)  # fmt: skip
        update_credit_notes(
            client, update.organization_id, [update.credit_note_id], refund_status=update.status
        )
        changed.append(RefundOutcome(update.organization_id, update.credit_note_id, update.status))
    return changed


def _webhook_may_move(current: str, reported: str) -> bool:
    if current in ("", "pending"):
        return reported != "pending"
    return current == "succeeded" and reported == "failed"
