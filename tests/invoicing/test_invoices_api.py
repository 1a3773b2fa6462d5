"""The invoice endpoints of the billing API, through lago-python-client, against a real server.

The Stripe tests drive localstripe, whose missing routes the test harness adds following
Stripe's API reference (orchestration/stripe/local_stripe.py); they exist in the harness only.
Refunds are localstripe's own ``POST /v1/refunds``; the harness adds the invoice payments list
(how the provider finds the invoice's PaymentIntent), the refund.created and charge.refunded
events, and (harness only, not Stripe) ``/_config/refunds/{id}/status`` to make a refund fail
later at the provider, as a refund to a closed card does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from clickhouse_connect.driver.client import Client
from dagster import materialize
from lago_python_client.client import Client as LagoClient
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.add_on import AddOn
from lago_python_client.models.credit_note import CreditNote, CreditNoteUpdate
from lago_python_client.models.invoice import Invoice, InvoicePreview, OneOffInvoice
from lago_python_client.models.wallet import Wallet

from meterhouse.orgs import create_organization
from orchestration.invoices.billing import bill_day
from orchestration.invoices.payments import push_day
from orchestration.invoices.refund_job import credit_note_refunds
from orchestration.resources import PaymentProvidersResource, WarehouseResource
from orchestration.stripe.provider import ManualProvider
from orchestration.stripe.stripe_provider import StripeProvider
from tests.conftest import Warehouse
from tests.invoicing.catalog import T0, Catalog, fresh_database, insert
from tests.invoicing.stripe_support import (
    STRIPE_TEST_KEY,
    WebhookCatcher,
    fail_next_calls,
    localstripe,
    register_webhook,
    webhook_catcher,
)
from tests.support.pdf import pdf_text
from tests.support.processes import ServiceProcess, free_port, meterhouse_command

DAY = date(2024, 5, 1)
WEBHOOK_SECRET = "whsec_api_tests"


@dataclass
class Billing:
    client: Client
    catalog: Catalog
    lago: Any  # lago-python-client's mixins are not typed precisely enough for mypy
    url: str
    api_key: str
    stripe_url: str
    webhooks: WebhookCatcher

    def get(self, path: str) -> httpx.Response:
        return httpx.get(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )


@pytest.fixture(scope="module")
def billing(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Billing]:
    client = fresh_database(warehouse)
    organization, api_key = create_organization(client, "Acme Billing")
    catalog = Catalog(client, organization.organization_id)
    catalog.tax("vat", "20")
    logs = tmp_path_factory.mktemp("invoices_api")
    port = free_port()
    with localstripe(logs) as stripe_url, webhook_catcher() as webhooks:
        insert(client, "webhook_endpoints", {
            "organization_id": organization.organization_id, "id": uuid.uuid4(),
            "webhook_url": webhooks.url, "signature_algo": "hmac", "event_types": [],
            "created_at": T0, "updated_at": T0, "version": 1,
        })  # fmt: skip
        server = ServiceProcess(
            meterhouse_command("api", "serve", "--port", str(port)),
            f"http://127.0.0.1:{port}/health",
            env={
                **warehouse.env,
                "MH_WAREHOUSE_DATABASE": client.database or "",
                "MH_STRIPE_API_KEY": STRIPE_TEST_KEY,
                "MH_STRIPE_API_BASE": stripe_url,
                "MH_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "MH_WEBHOOK_SIGNING_SECRET": "api-webhook-secret",
            },
            log_path=logs / "api.log",
        )
        with server:
            url = f"http://127.0.0.1:{port}"
            lago = LagoClient(api_key=api_key, api_url=url)
            yield Billing(client, catalog, lago, url, api_key, stripe_url, webhooks)


def invoice_for(billing: Billing, external_id: str, *amounts: int, **customer: object) -> str:
    customer_id = billing.catalog.customer(external_id, **customer)
    for amount in amounts:
        billing.catalog.fee(customer_id, amount, DAY, tax_codes=("vat",))
    bill_day(billing.client, DAY, now=datetime(2024, 5, 1, 6, tzinfo=UTC))
    (invoice,) = billing.lago.invoices.find_all({"external_customer_id": external_id})["invoices"]
    return str(invoice.lago_id)


def test_invoice_listing_detail_fees_and_pdf(billing: Billing, tmp_path: Path) -> None:
    lago_id = invoice_for(billing, "listing", 10_000, 2_500)
    invoice = billing.lago.invoices.find(lago_id)
    assert invoice.status == "finalized" and invoice.payment_status == "pending"
    assert (invoice.fees_amount_cents, invoice.taxes_amount_cents) == (12_500, 2_500)
    assert invoice.total_amount_cents == invoice.total_due_amount_cents == 15_000
    assert sorted(f.amount_cents for f in invoice.fees.__root__) == [2_500, 10_000]
    assert invoice.applied_taxes.__root__[0].tax_code == "vat"
    fees = billing.lago.fees.find_all({"external_customer_id": "listing"})["fees"]
    assert sorted(f.amount_cents for f in fees) == [2_500, 10_000]
    downloaded = billing.lago.invoices.download(lago_id)
    assert downloaded is not None and downloaded.file_url
    pdf = httpx.get(
        downloaded.file_url, headers={"Authorization": f"Bearer {billing.api_key}"}, timeout=30
    )
    assert pdf.headers["content-type"] == "application/pdf"
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf.content)
    text = pdf_text(path)
    assert invoice.number in text and "150.00" in text
    missing = billing.get("/api/v1/invoices/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["code"] == "invoice_not_found"


def test_draft_refresh_finalize_and_void(billing: Billing) -> None:
    lago_id = invoice_for(billing, "drafty", 1_000, invoice_grace_period=30)
    assert billing.lago.invoices.find(lago_id).status == "draft"
    assert billing.lago.invoices.refresh(lago_id).status == "draft"
    finalized = billing.lago.invoices.finalize(lago_id)
    assert finalized.status == "finalized"
    assert finalized.sequential_id is not None and "DRAFT" not in finalized.number
    with pytest.raises(LagoApiError):
        billing.lago.invoices.finalize(lago_id)  # finalized invoices are immutable
    voided = billing.lago.invoices.void(lago_id)
    assert voided.status == "voided" and voided.voided_at


def test_manual_payment_status_and_credit_note(billing: Billing) -> None:
    lago_id = invoice_for(billing, "credited", 10_000)
    paid = billing.lago.invoices.update(Invoice.parse_obj({"payment_status": "succeeded"}), lago_id)
    assert paid.payment_status == "succeeded" and paid.total_due_amount_cents == 0
    fee = billing.lago.invoices.find(lago_id).fees.__root__[0]
    note = billing.lago.credit_notes.create(
        CreditNote.parse_obj(
            {
                "invoice_id": lago_id,
                "reason": "other",
                "credit_amount_cents": 3_000,
                "refund_amount_cents": 0,
                "items": [{"fee_id": fee.lago_id, "amount_cents": 2_500}],
            }
        )
    )
    assert (note.sub_total_excluding_taxes_amount_cents, note.taxes_amount_cents) == (2_500, 500)
    assert note.total_amount_cents == note.balance_amount_cents == 3_000
    billing.webhooks.wait_for('"credit_note.created"')
    updated, _ = billing.webhooks.wait_for('"invoice.payment_status_updated"')
    assert json.loads(updated)["invoice"]["payment_status"] == "succeeded"
    with pytest.raises(LagoApiError) as refused:
        billing.lago.credit_notes.create(
            CreditNote.parse_obj(
                {
                    "invoice_id": lago_id,
                    "credit_amount_cents": 100_000,
                    "items": [{"fee_id": fee.lago_id, "amount_cents": 90_000}],
                }
            )
        )
    assert refused.value.status_code == 422
    # The next invoice of the customer consumes the credit note after tax.
    customer = billing.client.query(
        "SELECT id FROM customers FINAL WHERE external_id = 'credited'"
    ).result_rows[0][0]
    billing.catalog.fee(customer, 1_000, DAY + timedelta(days=31), tax_codes=("vat",))
    bill_day(billing.client, DAY + timedelta(days=31), now=datetime(2024, 6, 1, 6, tzinfo=UTC))
    invoices = billing.lago.invoices.find_all({"external_customer_id": "credited"})["invoices"]
    latest = max(invoices, key=lambda i: i.issuing_date)
    assert (latest.credit_notes_amount_cents, latest.total_amount_cents) == (1_200, 0)
    assert billing.lago.credit_notes.find(note.lago_id).balance_amount_cents == 1_800


def test_stripe_webhooks_update_payment_status(billing: Billing) -> None:
    register_webhook(billing.stripe_url, f"{billing.url}/webhooks/stripe", WEBHOOK_SECRET)
    lago_id = invoice_for(billing, "striped", 4_000, payment_provider="stripe")
    provider = StripeProvider(STRIPE_TEST_KEY, api_base=billing.stripe_url)
    assert push_day(billing.client, provider, DAY).pushed == 1
    reference = billing.client.query(
        "SELECT provider_object_id FROM provider_references FINAL WHERE object_type = 'invoice' "
        "AND object_id = %(id)s",
        parameters={"id": lago_id},
    ).result_rows[0][0]
    provider.mark_paid_out_of_band(reference, lago_id)  # type: ignore[arg-type]
    deadline = time.monotonic() + 20
    while billing.lago.invoices.find(lago_id).payment_status != "succeeded":
        assert time.monotonic() < deadline, "the invoice.paid webhook never updated the invoice"
        time.sleep(0.2)
    # Voiding a pushed, unpaid invoice voids it at Stripe too.
    unpaid = invoice_for(billing, "striped-void", 700, payment_provider="stripe")
    assert push_day(billing.client, provider, DAY).pushed == 1
    assert billing.lago.invoices.void(unpaid).status == "voided"
    voided_remote = billing.client.query(
        "SELECT provider_object_id FROM provider_references FINAL WHERE object_type = 'invoice' "
        "AND object_id = %(id)s",
        parameters={"id": unpaid},
    ).result_rows[0][0]
    remote = stripe.StripeClient(STRIPE_TEST_KEY, base_addresses={"api": billing.stripe_url})
    assert remote.v1.invoices.retrieve(voided_remote).status == "void"
    forged = httpx.post(
        f"{billing.url}/webhooks/stripe",
        content=b'{"type": "invoice.paid"}',
        headers={"Stripe-Signature": "t=1,v1=00"},
    )
    assert forged.status_code == 400 and forged.json()["code"] == "invalid_signature"


def webhook_bodies(
    billing: Billing, object_type: str, object_id: str, count: int
) -> list[dict[str, Any]]:
    """The webhooks about one object, once ``count`` of them have arrived."""
    deadline = time.monotonic() + 20
    while True:
        bodies = [json.loads(body) for body, _ in list(billing.webhooks.received)]
        about = [b for b in bodies if b.get(object_type, {}).get("lago_id") == object_id]
        if len(about) >= count:
            return about
        assert time.monotonic() < deadline, f"only {about} after 20 s"
        time.sleep(0.1)


def test_purchased_credits_settle_when_stripe_collects_their_invoice(billing: Billing) -> None:
    register_webhook(billing.stripe_url, f"{billing.url}/webhooks/stripe", WEBHOOK_SECRET)
    billing.catalog.customer("prepaid", payment_provider="stripe")
    wallet = billing.lago.wallets.create(
        Wallet(external_customer_id="prepaid", rate_amount="2", currency="EUR", paid_credits="5")
    )
    [purchase] = billing.lago.wallet_transactions.find_all(wallet.lago_id)["wallet_transactions"]
    invoice = billing.lago.invoices.find(purchase.lago_invoice_id)
    assert (invoice.invoice_type, invoice.total_amount_cents) == ("credit", 1_000)
    provider = StripeProvider(STRIPE_TEST_KEY, api_base=billing.stripe_url)
    assert push_day(billing.client, provider, date.fromisoformat(invoice.issuing_date)).pushed == 1
    reference = billing.client.query(
        "SELECT provider_object_id FROM provider_references FINAL WHERE object_type = 'invoice' "
        "AND object_id = %(id)s",
        parameters={"id": invoice.lago_id},
    ).result_rows[0][0]
    provider.mark_paid_out_of_band(reference, invoice.lago_id)  # type: ignore[arg-type]
    deadline = time.monotonic() + 20
    while billing.lago.wallets.find(wallet.lago_id).credits_balance != "5.0":
        assert time.monotonic() < deadline, "the invoice.paid webhook never settled the credits"
        time.sleep(0.2)
    [settled] = billing.lago.wallet_transactions.find_all(wallet.lago_id)["wallet_transactions"]
    assert settled.status == "settled"
    # Lago's webhooks: the transaction created, then updated once settled.
    sent = {
        (body["webhook_type"], body["wallet_transaction"]["status"])
        for body in webhook_bodies(billing, "wallet_transaction", purchase.lago_id, count=2)
    }
    assert sent == {
        ("wallet_transaction.created", "pending"),
        ("wallet_transaction.updated", "settled"),
    }


def test_one_off_invoice_for_add_ons(billing: Billing) -> None:
    billing.catalog.customer("one-off-co")
    billing.lago.add_ons.create(
        AddOn.parse_obj(
            {"name": "Setup", "code": "setup", "amount_cents": 1_500, "amount_currency": "EUR"}
        )
    )
    created = billing.lago.invoices.create(
        OneOffInvoice.parse_obj(
            {
                "external_customer_id": "one-off-co",
                "currency": "EUR",
                "fees": [{"add_on_code": "setup", "units": 3, "tax_codes": ["vat"]}],
            }
        )
    )
    assert created.invoice_type == "one_off" and created.status == "finalized"
    assert (created.fees_amount_cents, created.total_amount_cents) == (4_500, 5_400)
    assert created.fees.__root__[0].units == "3.0"
    unknown = httpx.post(
        f"{billing.url}/api/v1/invoices",
        json={"invoice": {"external_customer_id": "one-off-co", "fees": [{"add_on_code": "nope"}]}},
        headers={"Authorization": f"Bearer {billing.api_key}"},
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "add_on_not_found"


def test_preview_computes_without_writing(billing: Billing) -> None:
    customer = billing.catalog.customer("previewed")
    billing.catalog.fee(customer, 2_000, DAY, tax_codes=("vat",))
    billing.catalog.coupon(customer, amount_cents=500)
    before = billing.client.query("SELECT count() FROM invoices FINAL").result_rows[0][0]
    preview = billing.lago.invoices.preview(
        InvoicePreview.parse_obj({"customer": {"external_id": "previewed"}})
    )
    assert preview.status == "draft"
    assert (preview.fees_amount_cents, preview.coupons_amount_cents) == (2_000, 500)
    assert (preview.taxes_amount_cents, preview.total_amount_cents) == (300, 1_800)
    assert billing.client.query("SELECT count() FROM invoices FINAL").result_rows[0][0] == before
    nothing = httpx.post(
        f"{billing.url}/api/v1/invoices/preview",
        json={"customer": {"external_id": "previewed"}, "subscriptions": {"external_ids": ["x"]}},
        headers={"Authorization": f"Bearer {billing.api_key}"},
    )
    assert nothing.status_code == 404


# --- corrections: refunds and voids ------------------------------------------------------------
def paid_by_card(billing: Billing, external_id: str, *amounts: int) -> str:
    """An invoice pushed to localstripe and paid there by card; its invoice.paid webhook has
    reached the API (payment_status succeeded)."""
    register_webhook(billing.stripe_url, f"{billing.url}/webhooks/stripe", WEBHOOK_SECRET)
    remote = stripe.StripeClient(STRIPE_TEST_KEY, base_addresses={"api": billing.stripe_url})
    stripe_customer = remote.v1.customers.create({"name": external_id})
    card = remote.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer.id})
    remote.v1.customers.update(
        stripe_customer.id, {"invoice_settings": {"default_payment_method": card.id}}
    )
    lago_id = invoice_for(
        billing, external_id, *amounts,
        payment_provider="stripe", provider_customer_id=stripe_customer.id,
    )  # fmt: skip
    provider = StripeProvider(STRIPE_TEST_KEY, api_base=billing.stripe_url)
    assert push_day(billing.client, provider, DAY).pushed == 1
    poll(lambda: billing.lago.invoices.find(lago_id).payment_status == "succeeded")
    return lago_id


def poll(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.1)


def webhook_about(
    billing: Billing, webhook_type: str, lago_id: str, status: str, count: int = 1
) -> None:
    """Wait for ``count`` webhooks of that type about that credit note with that status."""

    def received() -> bool:
        matching = 0
        for body, _ in list(billing.webhooks.received):
            sent = json.loads(body)
            note = sent.get("credit_note") or {}
            about = (sent.get("webhook_type"), note.get("lago_id"), note.get("refund_status"))
            matching += about == (webhook_type, lago_id, status)
        return matching >= count

    poll(received)


def credit_note_json(billing: Billing, lago_id: str) -> dict[str, Any]:
    response = billing.get(f"/api/v1/credit_notes/{lago_id}")
    response.raise_for_status()
    note: dict[str, Any] = response.json()["credit_note"]
    return note


def test_credit_note_refund_reaches_stripe(billing: Billing) -> None:
    lago_id = paid_by_card(billing, "refunded-by-card", 10_000)  # 10_000 + 20 % VAT = 12_000
    fee = billing.lago.invoices.find(lago_id).fees.__root__[0]
    # 5_000 of the fee back, with its VAT: 5_000 + 1_000 = 6_000, all refunded.
    note = billing.lago.credit_notes.create(
        CreditNote.parse_obj(
            {
                "invoice_id": lago_id,
                "reason": "product_unsatisfactory",
                "credit_amount_cents": 0,
                "refund_amount_cents": 6_000,
                "items": [{"fee_id": fee.lago_id, "amount_cents": 5_000}],
            }
        )
    )
    assert (note.total_amount_cents, note.refund_amount_cents) == (6_000, 6_000)
    assert note.refund_status == "succeeded"
    refund_id = credit_note_json(billing, note.lago_id)["provider_refund_id"]
    remote = stripe.StripeClient(STRIPE_TEST_KEY, base_addresses={"api": billing.stripe_url})
    refund = remote.v1.refunds.retrieve(refund_id)
    assert refund.amount == 6_000
    assert refund.to_dict()["metadata"]["meterhouse_credit_note_id"] == note.lago_id
    assert remote.v1.charges.retrieve(str(refund.charge)).amount_refunded == 6_000
    webhook_about(billing, "credit_note.refund_status_updated", note.lago_id, "succeeded")
    # Stripe's own refund.created event has reached the API before the refund fails later.
    poll(
        lambda: (
            billing.client.query(
                "SELECT count() FROM provider_events WHERE event_type = 'refund.created' "
                "AND provider_object_id = %(refund)s",
                parameters={"refund": refund_id},
            ).result_rows[0][0]
            == 1
        )
    )
    httpx.post(
        f"{billing.stripe_url}/_config/refunds/{refund_id}/status", params={"status": "failed"}
    ).raise_for_status()
    poll(lambda: billing.lago.credit_notes.find(note.lago_id).refund_status == "failed")
    webhook_about(billing, "credit_note.refund_status_updated", note.lago_id, "failed")
    # The money went back another way: recorded by hand (Lago's credit note update).
    fixed = billing.lago.credit_notes.update(
        CreditNoteUpdate(refund_status="succeeded", metadata=None), note.lago_id
    )
    assert fixed.refund_status == "succeeded"
    webhook_about(billing, "credit_note.refund_status_updated", note.lago_id, "succeeded", 2)
    bad = httpx.put(
        f"{billing.url}/api/v1/credit_notes/{note.lago_id}",
        json={"credit_note": {"refund_status": "refunded"}},
        headers={"Authorization": f"Bearer {billing.api_key}"},
    )
    assert bad.status_code == 422


def test_refund_by_hand_without_provider_and_out_of_band_with_the_manual_one(
    billing: Billing,
) -> None:
    def refund_note(lago_id: str) -> Any:
        billing.lago.invoices.update(Invoice.parse_obj({"payment_status": "succeeded"}), lago_id)
        fee = billing.lago.invoices.find(lago_id).fees.__root__[0]
        # The whole 1_000 fee with its VAT (200): 1_200 refunded.
        return billing.lago.credit_notes.create(
            CreditNote.parse_obj(
                {
                    "invoice_id": lago_id,
                    "refund_amount_cents": 1_200,
                    "items": [{"fee_id": fee.lago_id, "amount_cents": 1_000}],
                }
            )
        )

    # No payment provider: the refund is made by hand and stays pending until recorded.
    by_hand = refund_note(invoice_for(billing, "refund-by-hand", 1_000))
    assert by_hand.refund_status == "pending"
    assert credit_note_json(billing, by_hand.lago_id)["provider_refund_id"] is None
    recorded = billing.lago.credit_notes.update(
        CreditNoteUpdate(refund_status="succeeded", metadata=None), by_hand.lago_id
    )
    assert recorded.refund_status == "succeeded"
    webhook_about(billing, "credit_note.refund_status_updated", by_hand.lago_id, "succeeded")
    # The manual provider collected the invoice out of band and refunds the same way: at once.
    manual_id = invoice_for(billing, "refund-manual", 1_000, payment_provider="manual")
    assert push_day(billing.client, ManualProvider(), DAY).pushed == 1
    out_of_band = refund_note(manual_id)
    assert out_of_band.refund_status == "succeeded"
    webhook_about(billing, "credit_note.refund_status_updated", out_of_band.lago_id, "succeeded")


def test_refund_provider_errors_fail_visibly_then_the_job_retries(
    billing: Billing, warehouse: Warehouse
) -> None:
    lago_id = paid_by_card(billing, "refund-retried", 2_000)  # 2_000 + 400 VAT = 2_400 paid
    fee = billing.lago.invoices.find(lago_id).fees.__root__[0]
    fail_next_calls(billing.stripe_url, 4)  # every try of the API's provider client
    # 1_000 of the fee with its VAT: 1_000 + 200 = 1_200 refunded.
    note = billing.lago.credit_notes.create(
        CreditNote.parse_obj(
            {
                "invoice_id": lago_id,
                "refund_amount_cents": 1_200,
                "items": [{"fee_id": fee.lago_id, "amount_cents": 1_000}],
            }
        )
    )
    assert note.refund_status == "failed"
    failed = credit_note_json(billing, note.lago_id)
    assert "injected failure" in failed["refund_error"] and failed["provider_refund_id"] is None
    webhook_about(billing, "credit_note.refund_status_updated", note.lago_id, "failed")

    def retry_job() -> Any:
        return materialize(
            [credit_note_refunds],
            resources={
                "warehouse": WarehouseResource(
                    url=warehouse.url, user=warehouse.user, password=warehouse.password,
                    database=billing.client.database,
                ),
                "payment_providers": PaymentProvidersResource(
                    stripe_api_key=STRIPE_TEST_KEY, stripe_api_base=billing.stripe_url,
                    max_attempts=2,
                ),
            },
            raise_on_error=True,
        )  # fmt: skip

    fail_next_calls(billing.stripe_url, 2)  # the job's tries fail too: the check fails
    (still_failing,) = retry_job().get_asset_check_evaluations()
    assert not still_failing.passed and still_failing.metadata["failed_refunds"].value == 1
    assert credit_note_json(billing, note.lago_id)["refund_status"] == "failed"
    result = retry_job()
    retried = credit_note_json(billing, note.lago_id)
    assert retried["refund_status"] == "succeeded" and retried["provider_refund_id"]
    assert retried["refund_error"] is None
    (check,) = result.get_asset_check_evaluations()
    assert check.passed  # no credit note of this database is left with a failed refund
    remote = stripe.StripeClient(STRIPE_TEST_KEY, base_addresses={"api": billing.stripe_url})
    assert remote.v1.refunds.retrieve(retried["provider_refund_id"]).amount == 1_200


def apply_fixed_coupon(
    billing: Billing, customer_id: uuid.UUID, amount_cents: int, frequency: str,
    duration: int | None = None,
) -> str:  # fmt: skip
    """A fixed-amount coupon applied as the API stores it (the application copies the terms)."""
    coupon_id, applied_id = uuid.uuid4(), uuid.uuid4()
    terms = {
        "amount_cents": amount_cents, "amount_currency": "EUR", "frequency": frequency,
        "frequency_duration": duration,
    }  # fmt: skip
    insert(billing.client, "coupons", {
        "organization_id": billing.catalog.organization_id, "id": coupon_id,
        "code": f"c{coupon_id.hex[:6]}", "name": "coupon", "coupon_type": "fixed_amount",
        "expiration": "no_expiration", "created_at": T0, "updated_at": T0, "version": 1, **terms,
    })  # fmt: skip
    insert(billing.client, "applied_coupons", {
        "organization_id": billing.catalog.organization_id, "id": applied_id,
        "coupon_id": coupon_id, "customer_id": customer_id, "status": "active",
        "created_at": T0, "updated_at": T0, "version": 1, **terms,
    })  # fmt: skip
    return str(applied_id)


def test_void_gives_back_coupons_prepaid_credits_and_credit_notes_once(billing: Billing) -> None:
    lago, catalog = billing.lago, billing.catalog
    customer = catalog.customer("given-back")

    def bill(day: date, amount_cents: int) -> Any:
        catalog.fee(customer, amount_cents, day, tax_codes=("vat",))
        bill_day(billing.client, day, now=datetime.combine(day, datetime.min.time(), UTC))
        invoices = lago.invoices.find_all({"external_customer_id": "given-back"})["invoices"]
        return next(i for i in invoices if i.issuing_date == day.isoformat())

    first = bill(DAY, 10_000)  # 10_000 + 2_000 VAT
    # 2_000 of the fee with its VAT (400) credited for later invoices.
    note = lago.credit_notes.create(
        CreditNote.parse_obj(
            {
                "invoice_id": first.lago_id,
                "credit_amount_cents": 2_400,
                "items": [{"fee_id": first.fees.__root__[0].lago_id, "amount_cents": 2_000}],
            }
        )
    )
    once = apply_fixed_coupon(billing, customer, 1_500, "once")
    recurring = apply_fixed_coupon(billing, customer, 500, "recurring", 3)
    wallet = str(catalog.wallet(customer, "30"))  # 30 credits at 1 EUR each: 3_000 cents

    def state() -> tuple[Any, ...]:
        applied = lago.applied_coupons.find_all({"external_customer_id": "given-back"})
        coupons = {
            c.lago_id: (c.amount_cents_remaining, c.frequency_duration_remaining, c.status)
            for c in applied["applied_coupons"]
        }
        found = lago.wallets.find(wallet)
        movements = lago.wallet_transactions.find_all(wallet)["wallet_transactions"]
        return (
            coupons[once], coupons[recurring],
            lago.credit_notes.find(note.lago_id).balance_amount_cents,
            found.balance_cents, float(found.credits_balance), float(found.consumed_credits),
            sorted((m.transaction_type, m.transaction_status, float(m.credit_amount))
                   for m in movements),
        )  # fmt: skip

    second = bill(DAY + timedelta(days=31), 20_000)
    # 20_000 - coupons (1_500 once + 500 recurring) = 18_000; VAT 20 % = 3_600 -> 21_600;
    # credit note 2_400 -> 19_200; prepaid credits 3_000 -> 16_200.
    assert (second.coupons_amount_cents, second.taxes_amount_cents) == (2_000, 3_600)
    assert (second.credit_notes_amount_cents, second.prepaid_credit_amount_cents) == (2_400, 3_000)
    assert second.total_amount_cents == 16_200
    assert state() == (
        (0, None, "terminated"), (None, 2, "active"), 0, 0, 0.0, 30.0,
        [("inbound", "granted", 30.0), ("outbound", "invoiced", 30.0)],
    )  # fmt: skip
    assert lago.invoices.void(second.lago_id).status == "voided"
    given_back = (
        (1_500, None, "active"), (None, 3, "active"), 2_400, 3_000, 30.0, 0.0,
        [("inbound", "granted", 30.0), ("inbound", "granted", 30.0),
         ("outbound", "invoiced", 30.0)],
    )  # fmt: skip
    assert state() == given_back
    with pytest.raises(LagoApiError) as again:
        lago.invoices.void(second.lago_id)
    assert again.value.status_code == 405
    assert state() == given_back  # voiding twice gives back once
    # The next invoice consumes exactly what came back: 10_000 - 2_000 coupons = 8_000;
    # VAT 1_600 -> 9_600; credit note 2_400 -> 7_200; prepaid credits 3_000 -> 4_200.
    third = bill(DAY + timedelta(days=62), 10_000)
    assert (third.coupons_amount_cents, third.credit_notes_amount_cents) == (2_000, 2_400)
    assert (third.prepaid_credit_amount_cents, third.total_amount_cents) == (3_000, 4_200)


def test_void_paid_invoice_with_credit_note_refunds_at_stripe(billing: Billing) -> None:
    lago_id = paid_by_card(billing, "voided-paid", 4_000)  # 4_000 + 800 VAT = 4_800 paid
    with pytest.raises(LagoApiError) as refused:
        billing.lago.invoices.void(lago_id)  # paid: only with Lago's explicit intent
    assert refused.value.status_code == 405
    with pytest.raises(LagoApiError) as too_much:
        billing.lago.invoices.void_invoice(
            lago_id, {"generate_credit_note": True, "refund_amount": 4_801}
        )
    assert too_much.value.status_code == 422
    assert billing.lago.invoices.find(lago_id).status == "finalized"  # nothing was voided
    voided = billing.lago.invoices.void_invoice(
        lago_id, {"generate_credit_note": True, "refund_amount": 3_000, "credit_amount": 1_800}
    )
    assert voided.status == "voided"
    # The whole 4_800 spread over the one fee: item 4_000, VAT 800; 3_000 refunded, the rest
    # (1_800) credited for later invoices.
    (note,) = [
        n for n in billing.lago.credit_notes.find_all()["credit_notes"]
        if n.lago_invoice_id == lago_id
    ]  # fmt: skip
    assert (note.total_amount_cents, note.refund_amount_cents) == (4_800, 3_000)
    assert (note.credit_amount_cents, note.balance_amount_cents) == (1_800, 1_800)
    assert note.refund_status == "succeeded"
    refund_id = credit_note_json(billing, note.lago_id)["provider_refund_id"]
    remote = stripe.StripeClient(STRIPE_TEST_KEY, base_addresses={"api": billing.stripe_url})
    assert remote.v1.refunds.retrieve(refund_id).amount == 3_000
    billing.webhooks.wait_for('"invoice.voided"')
