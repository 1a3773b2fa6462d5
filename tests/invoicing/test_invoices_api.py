"""The invoice endpoints of the billing API, through lago-python-client, against a real server.

The Stripe webhook test drives localstripe, whose missing routes the test harness adds following
Stripe's API reference (orchestration/stripe/local_stripe.py); they exist in the harness only.
"""

from __future__ import annotations

import json
import subprocess
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
from lago_python_client.client import Client as LagoClient
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.add_on import AddOn
from lago_python_client.models.credit_note import CreditNote
from lago_python_client.models.invoice import Invoice, InvoicePreview, OneOffInvoice

from meterhouse.orgs import create_organization
from orchestration.invoices.billing import bill_day
from orchestration.invoices.payments import push_day
from orchestration.stripe.stripe_provider import StripeProvider
from tests.conftest import Warehouse
from tests.invoicing.catalog import T0, Catalog, fresh_database, insert
from tests.invoicing.stripe_support import (
    STRIPE_TEST_KEY,
    WebhookCatcher,
    localstripe,
    register_webhook,
    webhook_catcher,
)
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
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
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
