"""The PDF invoice: a real PDF, rendered to PNG by poppler and read back as text."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from orchestration.invoices.pdf import PdfInvoice, PdfLine, render_invoice_pdf


def poppler() -> None:
    """poppler-utils renders and reads PDFs; install it when the machine lacks it."""
    if shutil.which("pdftoppm") is None:
        subprocess.run(
            ["apt-get", "install", "-y", "poppler-utils"], check=False, capture_output=True
        )
    if shutil.which("pdftoppm") is None:
        pytest.fail("poppler-utils (pdftoppm) is needed to check the PDF invoice")


def read_text(path: Path, *options: str) -> str:
    command = ["pdftotext", *options, str(path), "-"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


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
    poppler()
    pdf = render_invoice_pdf(sample())
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-singlefile", str(path), str(tmp_path / "page")],
        check=True,
    )
    image = Image.open(tmp_path / "page.png").convert("L")
    assert image.size[0] > 400 and image.size[1] > 600
    dark = sum(image.histogram()[:128])
    assert dark > 2000  # text was drawn, not a blank page
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
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
    poppler()
    base = sample()
    draft = PdfInvoice(
        **{**base.__dict__, "status": "draft", "currency": "JPY", "total_amount_cents": 1234567}
    )
    path = tmp_path / "draft.pdf"
    path.write_bytes(render_invoice_pdf(draft))
    text = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "Draft invoice" in text
    assert "1,234,567 JPY" in text
