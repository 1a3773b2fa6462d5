"""An invoice as the billing run builds it, before it is written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from orchestration.invoices.compute import InvoiceComputation
from orchestration.invoices.context import CustomerBilling, Fee


@dataclass(frozen=True)
class InvoiceRecord:
    id: UUID
    customer: CustomerBilling
    fees: list[Fee]
    computation: InvoiceComputation
    fees_version: int
    billing_date: date
    grouping_key: str
    currency: str
    timezone: str
    issuing_date: date
    payment_due_date: date
    grace_period_ends_on: date
    number: str
    sequential_id: int | None = None
    invoice_type: str = "subscription"
