"""Credit notes of ended pay-in-advance subscriptions (billing-semantics.md, "Termination credit
note"), issued as Lago issues them when a subscription ends.

A subscription fee paid in advance covers its whole period. When the subscription ends within
it (terminated, or upgraded to another plan), the days after its last billed day come back on
one credit note on the fee's finalized invoice:

- the last billed day is the termination's local date (the customer's timezone), or the day
  before it on an upgrade, where the new plan bills the upgrade day (as rating's
  int_subscriptions ends the period);
- the credited amount is those days at the day price, ``amount / billed days`` of the fee (its
  plan amount over the full period's days), unrounded; the fee's coupon share comes off in
  proportion, then its tax rate applies; the note's sub-total and taxes are each rounded once
  (15467 + 3867 = 19334 where the exact total is 19333.33), at most what earlier notes left of
  the fee;
- ``on_termination_credit_note``: ``credit`` (the default) credits the customer's next
  invoices; ``refund`` refunds what the invoice was paid, up to the total, and credits the rest
  (the refund is sent by the refund job); ``skip`` issues nothing.

The note's id derives from the subscription, so a run repeated, or run again after a crash,
issues it once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from api.storage.invoices import InvoiceRecords
from orchestration.invoices.credit_notes import CreditNoteAmounts, create_credit_note
from orchestration.invoices.ids import record_id, stored_ids
from orchestration.invoices.money import HUNDRED, currency_exponent, round_cents

# Terminated pay-in-advance subscriptions whose finalized invoice holds the subscription fee of
# the period they ended in, with the fee's timezone from the fees table (those with a note
# already are left out by its id, derived in Python).
ENDED_SUBSCRIPTION_FEES_SQL = """
SELECT s.organization_id AS organization_id, s.id AS subscription_id,
       ifNull(s.on_termination_credit_note, 'credit') AS mode,
       s.terminated_at AS terminated_at, s.trial_ended_at AS trial_ended_at,
       n.started_at AS next_started_at, ff.timezone AS timezone,
       f.invoice_id AS invoice_id, f.id AS fee_id, f.period_from AS period_from,
       f.period_to AS period_to, f.amount AS amount, f.currency AS currency
FROM subscriptions AS s FINAL
LEFT JOIN subscriptions AS n FINAL
    ON n.organization_id = s.organization_id AND n.id = s.next_subscription_id
INNER JOIN invoice_fees AS f FINAL
    ON f.organization_id = s.organization_id AND f.subscription_id = s.id
INNER JOIN invoices AS i FINAL
    ON i.organization_id = f.organization_id AND i.id = f.invoice_id
    AND i.fees_version = f.fees_version
INNER JOIN (SELECT DISTINCT organization_id, fee_id, timezone FROM {fees}) AS ff
    ON ff.organization_id = f.organization_id AND ff.fee_id = f.id
WHERE s.is_deleted = 0 AND s.status = 'terminated' AND s.terminated_at IS NOT NULL
  AND mode != 'skip'
  AND f.fee_type = 'subscription' AND f.pay_in_advance = 1 AND f.amount_cents > 0
  AND i.status = 'finalized'
  AND f.period_from <= assumeNotNull(s.terminated_at)
  AND assumeNotNull(s.terminated_at) <= f.period_to
"""


@dataclass(frozen=True)
class EndedSubscriptionFee:
    organization_id: uuid.UUID
    subscription_id: uuid.UUID
    mode: str  # credit | refund
    terminated_at: datetime
    trial_ended_at: datetime | None
    next_started_at: datetime | None
    timezone: str
    invoice_id: uuid.UUID
    fee_id: uuid.UUID
    period_from: datetime
    period_to: datetime
    amount: Decimal  # the fee's unrounded amount, in major units
    currency: str

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(ZoneInfo(self.timezone)).date()

    @property
    def is_upgrade(self) -> bool:
        ended = self.local_date(self.terminated_at)
        return self.next_started_at is not None and self.local_date(self.next_started_at) == ended

    def unused_cents(self) -> Decimal:
        """The days after the last billed day, at the fee's day price, in minor units."""
        last_billed = self.local_date(self.terminated_at)
        if self.is_upgrade:
            last_billed -= timedelta(days=1)
        period_end = self.local_date(self.period_to)
        billed_from = self.local_date(self.period_from)
        if self.trial_ended_at is not None:  # the fee bills from the trial's end
            billed_from = max(billed_from, self.local_date(self.trial_ended_at))
        billed_days = (period_end - billed_from).days + 1
        unused_days = (period_end - max(last_billed, billed_from - timedelta(days=1))).days
        if billed_days <= 0 or unused_days <= 0:
            return Decimal(0)
        cents = self.amount.scaleb(currency_exponent(self.currency))
        return cents * unused_days / billed_days


def termination_note_id(organization_id: uuid.UUID, subscription_id: uuid.UUID) -> uuid.UUID:
    return record_id("termination_credit_note", organization_id, subscription_id)


def termination_amounts(
    fee: dict[str, Any], credited_cents: int, unused: Decimal
) -> CreditNoteAmounts:
    """One item on the fee: ``unused`` (minor units, unrounded, at most what earlier notes left
    of the fee) less its coupon share, taxed at the fee's rate; sub-total and taxes rounded once
    each."""
    precise = min(unused, Decimal(fee["amount_cents"] - credited_cents))
    share = fee["precise_coupons_amount_cents"] * precise / fee["amount_cents"]
    base = precise - share
    sub_total = round_cents(base)
    taxes = round_cents(base * fee["taxes_rate"] / HUNDRED)
    return CreditNoteAmounts(
        coupons_adjustment_amount_cents=round_cents(share),
        sub_total_excluding_taxes_amount_cents=sub_total,
        taxes_amount_cents=taxes,
        total_amount_cents=sub_total + taxes,
        items=[(fee["id"], round_cents(precise), base)],
    )


def issue_termination_credit_notes(
    client: Client, fees_table: str = "fct_fees"
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Issue the notes due; (organization, credit note) of each note issued."""
    records = InvoiceRecords(client)
    sql = ENDED_SUBSCRIPTION_FEES_SQL.replace("{fees}", fees_table)
    ended = [EndedSubscriptionFee(**row) for row in client.query(sql).named_results()]
    noted = stored_ids(
        client,
        "credit_notes FINAL",
        [termination_note_id(e.organization_id, e.subscription_id) for e in ended],
    )
    issued = []
    for subscription_fee in ended:
        note_id = termination_note_id(
            subscription_fee.organization_id, subscription_fee.subscription_id
        )
        if note_id not in noted and _issue(records, subscription_fee, note_id):
            issued.append((subscription_fee.organization_id, note_id))
    return issued


def _issue(records: InvoiceRecords, ended: EndedSubscriptionFee, note_id: uuid.UUID) -> bool:
    """Write the note; False when nothing is left to credit."""
    organization_id = ended.organization_id
    invoice = records.invoice(organization_id, str(ended.invoice_id))
    unused = ended.unused_cents()
    if invoice is None or unused <= 0:
        return False
    fees = {fee["id"]: fee for fee in records.fees_of(organization_id, [invoice])[invoice["id"]]}
    credited = records.credited_by_fee(organization_id, invoice["id"]).get(ended.fee_id, 0)
    amounts = termination_amounts(fees[ended.fee_id], credited, unused)
    if amounts.total_amount_cents <= 0:
        return False
    refund = 0
    if ended.mode == "refund":
        refund = min(amounts.total_amount_cents, invoice["total_paid_amount_cents"])
    create_credit_note(
        records.client,
        invoice,
        amounts,
        reason="order_change" if ended.is_upgrade else "order_cancellation",
        description=None,
        credit_amount_cents=amounts.total_amount_cents - refund,
        refund_amount_cents=refund,
        sequence=records.last_credit_note_sequence(organization_id, invoice["id"]) + 1,
        note_id=note_id,
    )
    return True
