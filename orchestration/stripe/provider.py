"""What invoicing needs from a payment provider, independent of any provider's API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class ProviderCustomer:
    organization_id: UUID
    customer_id: UUID
    external_id: str
    name: str | None = None
    email: str | None = None
    provider_customer_id: str | None = None  # already linked at the provider


@dataclass(frozen=True)
class ProviderInvoiceLine:
    key: str  # stable within the invoice: a fee id or a credit/tax label
    description: str
    amount_cents: int


@dataclass(frozen=True)
class ProviderInvoice:
    organization_id: UUID
    invoice_id: UUID
    number: str
    currency: str
    total_amount_cents: int
    due_date: date
    lines: tuple[ProviderInvoiceLine, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PushResult:
    provider_customer_id: str
    provider_invoice_id: str
    status: str  # the provider's invoice status after the push: open | paid


@dataclass(frozen=True)
class RefundRequest:
    """Give back part of what the customer paid for an invoice, for one credit note."""

    organization_id: UUID
    credit_note_id: UUID
    invoice_id: UUID
    provider_invoice_id: str
    amount_cents: int
    currency: str


@dataclass(frozen=True)
class ProviderRefund:
    provider_refund_id: str
    status: str  # Lago's refund_status: pending | succeeded | failed


@dataclass(frozen=True)
class RefundUpdate:
    """What a provider webhook says about the refund of one of our credit notes."""

    organization_id: UUID
    credit_note_id: UUID
    provider_refund_id: str
    status: str  # pending | succeeded | failed


@dataclass(frozen=True)
class PaymentEvent:
    """A provider webhook reduced to what changes our payment or refund statuses."""

    provider_event_id: str
    event_type: str
    provider_invoice_id: str
    organization_id: UUID | None
    invoice_id: UUID | None
    payment_status: str | None  # succeeded | failed | None when the event changes nothing
    amount_paid_cents: int
    payload: str
    refunds: tuple[RefundUpdate, ...] = ()


class ProviderError(Exception):
    """A provider call failed for good (after retries, or a request the provider refuses)."""


class InvalidWebhook(ProviderError):
    """A webhook whose signature or body does not verify."""


class PaymentProvider(Protocol):
    name: str

    def ensure_customer(self, customer: ProviderCustomer) -> str:
        """The provider's id of this customer, creating (or linking) it once."""
        ...

    def push_invoice(self, invoice: ProviderInvoice, provider_customer_id: str) -> PushResult:
        """Create the invoice and its lines at the provider, finalize it, start collection."""
        ...

    def mark_paid_out_of_band(self, provider_invoice_id: str, invoice_id: UUID) -> str: ...

    def void_invoice(self, provider_invoice_id: str, invoice_id: UUID) -> str: ...

    def retry_payment(self, provider_invoice_id: str, invoice_id: UUID, attempt: int) -> str: ...

    def refund(self, request: RefundRequest) -> ProviderRefund:
        """Refund ``amount_cents`` of the invoice's payment, once per credit note."""
        ...

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> PaymentEvent: ...


def invoice_lines(
    fee_lines: list[ProviderInvoiceLine],
    *,
    progressive_credit_cents: int,
    coupons_cents: int,
    taxes: list[tuple[str, int]],
    credit_notes_cents: int,
    prepaid_credit_cents: int,
) -> tuple[ProviderInvoiceLine, ...]:
    """Fee lines plus one line per credit and per tax, so the provider's total equals ours."""
    extra = [
        ("progressive_billing_credit", "Usage already billed", -progressive_credit_cents),
        ("coupons", "Coupons", -coupons_cents),
        *((f"tax:{code}", f"Tax {code}", amount) for code, amount in taxes),
        ("credit_notes", "Credit notes", -credit_notes_cents),
        ("prepaid_credits", "Prepaid credits", -prepaid_credit_cents),
    ]
    return tuple(fee_lines) + tuple(
        ProviderInvoiceLine(key, description, amount)
        for key, description, amount in extra
        if amount != 0
    )


class ManualProvider:
    """No external provider: invoices are collected by hand and marked paid through the API."""

    name = "manual"

    def ensure_customer(self, customer: ProviderCustomer) -> str:
        return str(customer.customer_id)

    def push_invoice(self, invoice: ProviderInvoice, provider_customer_id: str) -> PushResult:
        status = "paid" if invoice.total_amount_cents <= 0 else "open"
        return PushResult(provider_customer_id, str(invoice.invoice_id), status)

    def mark_paid_out_of_band(self, provider_invoice_id: str, invoice_id: UUID) -> str:
        return "paid"

    def void_invoice(self, provider_invoice_id: str, invoice_id: UUID) -> str:
        return "void"

    def retry_payment(self, provider_invoice_id: str, invoice_id: UUID, attempt: int) -> str:
        return "open"

    def refund(self, request: RefundRequest) -> ProviderRefund:
        """The money goes back out of band, as it came in: recorded as succeeded at once."""
        return ProviderRefund(str(request.credit_note_id), "succeeded")

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> PaymentEvent:
        raise InvalidWebhook("the manual provider receives no webhooks")
