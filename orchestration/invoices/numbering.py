"""Sequential invoice numbers per organization or per customer (Lago's document_numbering)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date

from orchestration.invoices.context import CustomerBilling, DayContext
from orchestration.invoices.records import InvoiceRecord


def number_scope(customer: CustomerBilling) -> str:
    if customer.document_numbering == "per_organization":
        return "organization"
    return f"customer:{customer.customer_id}"


def format_number(customer: CustomerBilling, issuing_date: date, sequence: int) -> str:
    """Lago's formats: per organization PREFIX-YYYYMM-NNN, per customer PREFIX-CUSTOMER-NNN."""
    if customer.document_numbering == "per_organization":
        return f"{customer.document_number_prefix}-{issuing_date:%Y%m}-{sequence:03d}"
    short = hashlib.sha256(str(customer.customer_id).encode()).hexdigest()[:4].upper()
    return f"{customer.document_number_prefix}-{short}-{sequence:03d}"


def assign_numbers(records: list[InvoiceRecord], context: DayContext) -> list[InvoiceRecord]:
    """Sequential numbers per scope, in a deterministic order; a number is never given twice."""
    numbered = []
    ordered = sorted(
        records, key=lambda r: (str(r.customer.organization_id), r.issuing_date, str(r.id))
    )
    for record in ordered:
        known = context.numbers.get(record.id)
        if known is None:
            scope_key = (record.customer.organization_id, number_scope(record.customer))
            sequence = context.last_sequence.get(scope_key, 0) + 1
            context.last_sequence[scope_key] = sequence
            known = (sequence, format_number(record.customer, record.issuing_date, sequence))
            context.numbers[record.id] = known
        numbered.append(replace(record, sequential_id=known[0], number=known[1]))
    return numbered
