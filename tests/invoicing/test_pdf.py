"""The PDF invoice: a real PDF, rendered to PNG by poppler and read back as text."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from PIL import Image

from orchestration.invoices.pdf import PdfInvoice, PdfLine, render_invoice_pdf
from tests.support.pdf import pdf_text, render_first_page_png


def sample() -> PdfInvoice:
    return PdfInvoice(
        number="ACM-202402-001",
        status="finalized",
        issuing_date=date(2024, 2, 1),
        payment_due_date=date(2024, 3, 2),
        currency="EUR",
        issuer_name="Acme Corp",
        customer_name="Zoë Müller GmbH",
        customer_lines=("Hauptstraße 1", "10115 Berlin", "DE"),
        lines=(
            PdfLine("Startup plan", "2024-01-01 – 2024-01-31", Decimal(1), 7197),
            PdfLine("API calls", "2024-01-01 – 2024-01-31", Decimal("12500.5"), 2443),
        ),
        fees_amount_cents=9640,
        progressive_billing_credit_amount_cents=0,
        coupons_amount_cents=640,
        sub_total_excluding_taxes_amount_cents=9000,
        taxes=(("VAT", Decimal("19.6"), 1764),),
        sub_total_including_taxes_amount_cents=10764,
        credit_notes_amount_cents=0,
        prepaid_credit_amount_cents=764,
        total_amount_cents=10000,
    )


def test_pdf_renders_and_reads_back(tmp_path: Path) -> None:
    pdf = render_invoice_pdf(sample())
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    image = Image.open(render_first_page_png(path, tmp_path / "page")).convert("L")
    assert image.size[0] > 400 and image.size[1] > 600
    dark = sum(image.histogram()[:128])
    assert dark > 2000  # text was drawn, not a blank page
    text = pdf_text(path, "-layout")
    for expected in (
        "Invoice",
        "ACM-202402-001",
        "Zoë Müller GmbH",
        "Hauptstraße 1",
        "API calls",
        "12500.5",
        "96.40 EUR",
        "-6.40 EUR",
        "VAT (19.6%)",
        "17.64 EUR",
        "-7.64 EUR",
        "Total due",
        "100.00 EUR",
    ):
        assert expected in text, expected


def test_zero_decimal_currency_and_draft_title(tmp_path: Path) -> None:
    base = sample()
    draft = PdfInvoice(
        **{**base.__dict__, "status": "draft", "currency": "JPY", "total_amount_cents": 1234567}
    )
    path = tmp_path / "draft.pdf"
    path.write_bytes(render_invoice_pdf(draft))
    text = pdf_text(path)
    assert "Draft invoice" in text
    assert "1,234,567 JPY" in text
