"""The Stripe provider against localstripe started on 127.0.0.1 by the tests.

localstripe lacks some Stripe routes (empty one-off invoices, invoice items on a given draft,
finalize, mark_uncollectible, paid_out_of_band, the invoice.paid event, Idempotency-Key, the
invoice payments list, the refund.created and charge.refunded events): the test harness
(orchestration/stripe/local_stripe.py) adds them following Stripe's API reference. They are
test-harness additions only; the provider code uses the official stripe SDK unchanged. Refunds
themselves are localstripe's own (``POST /v1/refunds``); a refund failing later at the provider
is simulated by the harness-only ``/_config/refunds/{id}/status``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
import stripe

from orchestration.stripe.provider import (
    InvalidWebhook,
    ProviderCustomer,
    ProviderError,
    ProviderInvoice,
    ProviderInvoiceLine,
    RefundRequest,
    RefundUpdate,
    invoice_lines,
)
from orchestration.stripe.stripe_provider import StripeProvider
from tests.invoicing.stripe_support import (
    STRIPE_TEST_KEY,
    WebhookCatcher,
    fail_next_calls,
    localstripe,
    register_webhook,
    webhook_catcher,
)

WEBHOOK_SECRET = "whsec_meterhouse_test"


@pytest.fixture
def stripe_url(tmp_path: Path) -> Iterator[str]:
    with localstripe(tmp_path) as url:
        yield url


@pytest.fixture
def catcher(stripe_url: str) -> Iterator[WebhookCatcher]:
    with webhook_catcher() as caught:
        register_webhook(stripe_url, caught.url, WEBHOOK_SECRET)
        yield caught


def provider(stripe_url: str, sleeps: list[float] | None = None) -> StripeProvider:
    return StripeProvider(
        STRIPE_TEST_KEY,
        webhook_secret=WEBHOOK_SECRET,
        api_base=stripe_url,
        sleep=(sleeps.append if sleeps is not None else None),
    )


def stripe_client(stripe_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(STRIPE_TEST_KEY, base_addresses={"api": stripe_url})


def sample_invoice(total_parts: tuple[int, int] = (1500, 2500)) -> ProviderInvoice:
    fees = [
        ProviderInvoiceLine(str(uuid4()), "Seats", total_parts[0]),
        ProviderInvoiceLine(str(uuid4()), "API calls", total_parts[1]),
    ]
    lines = invoice_lines(
        fees,
        progressive_credit_cents=0,
        coupons_cents=500,
        taxes=[("vat", 700)],
        credit_notes_cents=0,
        prepaid_credit_cents=200,
    )
    total = sum(line.amount_cents for line in lines)
    return ProviderInvoice(uuid4(), uuid4(), "ORG-001-001", "EUR", total, date(2024, 2, 1), lines)


def customer(**kwargs: object) -> ProviderCustomer:
    return ProviderCustomer(uuid4(), uuid4(), "acme", name="Acme", email="billing@acme.test")


def test_customer_is_created_once_with_our_ids(stripe_url: str) -> None:
    stripe_provider = provider(stripe_url)
    ours = customer()
    first = stripe_provider.ensure_customer(ours)
    again = stripe_provider.ensure_customer(ours)
    assert first == again and first.startswith("cus_")
    metadata = stripe_client(stripe_url).v1.customers.retrieve(first).metadata
    assert metadata is not None
    assert metadata["meterhouse_customer_id"] == str(ours.customer_id)
    assert metadata["external_customer_id"] == "acme"


def test_push_creates_one_finalized_invoice_with_our_lines_and_total(stripe_url: str) -> None:
    stripe_provider = provider(stripe_url)
    provider_customer = stripe_provider.ensure_customer(customer())
    invoice = sample_invoice()
    assert invoice.total_amount_cents == 1500 + 2500 - 500 + 700 - 200
    result = stripe_provider.push_invoice(invoice, provider_customer)
    assert result.status == "open"  # no payment method: Stripe would keep trying to collect
    # A re-run (same idempotency keys) neither creates a second invoice nor adds lines.
    assert stripe_provider.push_invoice(invoice, provider_customer) == result
    client = stripe_client(stripe_url)
    remote_invoices = client.v1.invoices.list({"customer": provider_customer}).data
    assert [i.id for i in remote_invoices] == [result.provider_invoice_id]
    remote = remote_invoices[0]
    assert remote.total == invoice.total_amount_cents
    assert remote.metadata is not None
    assert remote.metadata["meterhouse_invoice_id"] == str(invoice.invoice_id)
    assert len(remote.lines.data) == len(invoice.lines)


def test_paid_invoice_sends_signed_webhook_that_verifies(
    stripe_url: str, catcher: WebhookCatcher
) -> None:
    stripe_provider = provider(stripe_url)
    provider_customer = stripe_provider.ensure_customer(customer())
    client = stripe_client(stripe_url)
    card = client.v1.payment_methods.attach("pm_card_visa", {"customer": provider_customer})
    client.v1.customers.update(
        provider_customer, {"invoice_settings": {"default_payment_method": card.id}}
    )
    invoice = sample_invoice()
    result = stripe_provider.push_invoice(invoice, provider_customer)
    assert result.status == "paid"
    body, signature = catcher.wait_for('"invoice.paid"')
    event = stripe_provider.parse_webhook(body, signature)
    assert event.event_type == "invoice.paid"
    assert (event.invoice_id, event.organization_id) == (
        invoice.invoice_id,
        invoice.organization_id,
    )
    assert event.payment_status == "succeeded"
    assert event.amount_paid_cents == invoice.total_amount_cents
    with pytest.raises(InvalidWebhook):
        stripe_provider.parse_webhook(body.replace(b"invoice.paid", b"invoice.void"), signature)
    with pytest.raises(InvalidWebhook):
        stripe_provider.parse_webhook(body, "t=1,v1=deadbeef")


def test_declined_card_gives_payment_failed_event(stripe_url: str, catcher: WebhookCatcher) -> None:
    stripe_provider = provider(stripe_url)
    provider_customer = stripe_provider.ensure_customer(customer())
    client = stripe_client(stripe_url)
    # Attaching this test card succeeds; charging it fails (Stripe's pm_card_chargeCustomerFail).
    card = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": provider_customer}
    )
    client.v1.customers.update(
        provider_customer, {"invoice_settings": {"default_payment_method": card.id}}
    )
    stripe_provider.push_invoice(sample_invoice(), provider_customer)
    body, signature = catcher.wait_for('"invoice.payment_failed"')
    assert stripe_provider.parse_webhook(body, signature).payment_status == "failed"


def test_paid_out_of_band_and_void(stripe_url: str) -> None:
    stripe_provider = provider(stripe_url)
    provider_customer = stripe_provider.ensure_customer(customer())
    paid = sample_invoice()
    pushed = stripe_provider.push_invoice(paid, provider_customer)
    assert (
        stripe_provider.mark_paid_out_of_band(pushed.provider_invoice_id, paid.invoice_id) == "paid"
    )
    voided = sample_invoice()
    pushed = stripe_provider.push_invoice(voided, provider_customer)
    assert stripe_provider.void_invoice(pushed.provider_invoice_id, voided.invoice_id) == "void"


def test_provider_errors_are_retried_with_backoff(stripe_url: str) -> None:
    sleeps: list[float] = []
    stripe_provider = provider(stripe_url, sleeps)
    fail_next_calls(stripe_url, 2)
    provider_customer = stripe_provider.ensure_customer(customer())
    assert provider_customer.startswith("cus_")
    assert sleeps == [0.25, 0.5]
    fail_next_calls(stripe_url, 10)
    with pytest.raises(ProviderError):
        stripe_provider.ensure_customer(customer())
    assert sleeps[2:] == [0.25, 0.5, 1.0]
    fail_next_calls(stripe_url, 0)


def test_refused_request_is_not_retried(stripe_url: str) -> None:
    sleeps: list[float] = []
    with pytest.raises(ProviderError):
        provider(stripe_url, sleeps).push_invoice(sample_invoice(), "cus_doesnotexist")
    assert sleeps == []


def _paid_by_card(stripe_url: str) -> tuple[StripeProvider, ProviderInvoice, str]:
    stripe_provider = provider(stripe_url)
    provider_customer = stripe_provider.ensure_customer(customer())
    client = stripe_client(stripe_url)
    card = client.v1.payment_methods.attach("pm_card_visa", {"customer": provider_customer})
    client.v1.customers.update(
        provider_customer, {"invoice_settings": {"default_payment_method": card.id}}
    )
    invoice = sample_invoice()
    result = stripe_provider.push_invoice(invoice, provider_customer)
    assert result.status == "paid"
    return stripe_provider, invoice, result.provider_invoice_id


def test_refund_of_a_paid_invoice_once_per_credit_note(
    stripe_url: str, catcher: WebhookCatcher
) -> None:
    stripe_provider, invoice, provider_invoice_id = _paid_by_card(stripe_url)
    note_id = uuid4()
    request = RefundRequest(
        invoice.organization_id, note_id, invoice.invoice_id, provider_invoice_id, 1_200, "EUR"
    )
    refund = stripe_provider.refund(request)
    assert refund.provider_refund_id.startswith("re_") and refund.status == "succeeded"
    assert stripe_provider.refund(request) == refund  # same credit note: same refund
    remote = stripe_client(stripe_url).v1.refunds.retrieve(refund.provider_refund_id)
    assert remote.amount == 1_200
    assert remote.to_dict()["metadata"]["meterhouse_credit_note_id"] == str(note_id)
    refund_id = refund.provider_refund_id
    expected = RefundUpdate(invoice.organization_id, note_id, refund_id, "succeeded")
    for event_type in ('"refund.created"', '"charge.refunded"'):
        body, signature = catcher.wait_for(event_type)
        assert stripe_provider.parse_webhook(body, signature).refunds == (expected,)
    # The refund fails later at the provider (a closed card): refund.updated says so.
    httpx.post(
        f"{stripe_url}/_config/refunds/{refund.provider_refund_id}/status",
        params={"status": "failed"},
    ).raise_for_status()
    body, signature = catcher.wait_for('"refund.updated"')
    (update,) = stripe_provider.parse_webhook(body, signature).refunds
    assert update.status == "failed"


def test_refund_of_an_invoice_paid_out_of_band_is_refused(stripe_url: str) -> None:
    stripe_provider = provider(stripe_url)
    invoice = sample_invoice()
    pushed = stripe_provider.push_invoice(invoice, stripe_provider.ensure_customer(customer()))
    stripe_provider.mark_paid_out_of_band(pushed.provider_invoice_id, invoice.invoice_id)
    request = RefundRequest(
        invoice.organization_id, uuid4(), invoice.invoice_id, pushed.provider_invoice_id, 100, "EUR"
    )
    with pytest.raises(ProviderError, match="no paid payment"):
        stripe_provider.refund(request)
