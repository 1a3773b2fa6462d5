"""The invoice as a PDF a person reads: issuer, customer, lines, credits, taxes, totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF

from orchestration.invoices.money import currency_exponent, from_cents

UNICODE_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
UNICODE_FONT_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


@dataclass(frozen=True)
class PdfLine:
    description: str
    period: str
    units: Decimal
    amount_cents: int


@dataclass(frozen=True)
class PdfInvoice:
    number: str
    status: str
    issuing_date: date
    payment_due_date: date
    currency: str
    issuer_name: str
    customer_name: str
    customer_lines: tuple[str, ...]
    lines: tuple[PdfLine, ...]
    fees_amount_cents: int
    progressive_billing_credit_amount_cents: int
    coupons_amount_cents: int
    sub_total_excluding_taxes_amount_cents: int
    taxes: tuple[tuple[str, Decimal, int], ...]  # (name, rate %, amount)
    sub_total_including_taxes_amount_cents: int
    credit_notes_amount_cents: int
    prepaid_credit_amount_cents: int
    total_amount_cents: int
    notes: tuple[str, ...] = field(default_factory=tuple)


def money(cents: int, currency: str) -> str:
    places = currency_exponent(currency)
    return f"{from_cents(cents, currency):,.{places}f} {currency}"


class _Document(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        if UNICODE_FONT.exists() and UNICODE_FONT_BOLD.exists():
            self.add_font("body", "", str(UNICODE_FONT))
            self.add_font("body", "B", str(UNICODE_FONT_BOLD))
            self.family = "body"
        else:  # core font: Latin-1 only, enough for ids and numbers
            self.family = "helvetica"
        self.set_auto_page_break(auto=True, margin=20)

    def text_font(self, size: float = 10, bold: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)


def render_invoice_pdf(invoice: PdfInvoice) -> bytes:
    pdf = _Document()
    pdf.add_page()
    _header(pdf, invoice)
    _lines_table(pdf, invoice)
    _totals(pdf, invoice)
    return bytes(pdf.output())


def _header(pdf: _Document, invoice: PdfInvoice) -> None:
    pdf.text_font(20, bold=True)
    title = "Invoice" if invoice.status != "draft" else "Draft invoice"
    pdf.cell(0, 12, title, new_x="LMARGIN", new_y="NEXT")
    pdf.text_font(10)
    for label, value in (
        ("Invoice number", invoice.number),
        ("Issue date", invoice.issuing_date.isoformat()),
        ("Payment due", invoice.payment_due_date.isoformat()),
    ):
        pdf.cell(40, 6, label)
        pdf.cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    top = pdf.get_y()
    pdf.text_font(10, bold=True)
    pdf.cell(90, 6, "From", new_x="LMARGIN", new_y="NEXT")
    pdf.text_font(10)
    pdf.cell(90, 6, invoice.issuer_name, new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(110, top)
    pdf.text_font(10, bold=True)
    pdf.cell(90, 6, "Bill to", new_x="LEFT", new_y="NEXT")
    pdf.text_font(10)
    for line in (invoice.customer_name, *invoice.customer_lines):
        pdf.cell(90, 6, line, new_x="LEFT", new_y="NEXT")
    pdf.set_x(pdf.l_margin)
    pdf.ln(6)


def _lines_table(pdf: _Document, invoice: PdfInvoice) -> None:
    widths = (80, 55, 20, 35)
    pdf.set_fill_color(235, 238, 245)
    pdf.text_font(9, bold=True)
    for width, heading in zip(widths, ("Item", "Service period", "Units", "Amount"), strict=True):
        pdf.cell(width, 7, heading, border="B", fill=True, align="R" if width < 55 else "L")
    pdf.ln()
    pdf.text_font(9)
    for line in invoice.lines:
        units = f"{line.units.normalize():f}"
        pdf.cell(widths[0], 6, line.description[:48])
        pdf.cell(widths[1], 6, line.period)
        pdf.cell(widths[2], 6, units, align="R")
        pdf.cell(widths[3], 6, money(line.amount_cents, invoice.currency), align="R")
        pdf.ln()
    pdf.ln(4)


def _totals(pdf: _Document, invoice: PdfInvoice) -> None:
    currency = invoice.currency
    rows: list[tuple[str, int, bool]] = [("Fees", invoice.fees_amount_cents, False)]
    if invoice.progressive_billing_credit_amount_cents:
        rows.append(
            ("Usage already billed", -invoice.progressive_billing_credit_amount_cents, False)
        )
    if invoice.coupons_amount_cents:
        rows.append(("Coupons", -invoice.coupons_amount_cents, False))
    rows.append(("Sub total (excl. tax)", invoice.sub_total_excluding_taxes_amount_cents, True))
    for name, rate, amount in invoice.taxes:
        rows.append((f"{name} ({rate.normalize():f}%)", amount, False))
    rows.append(("Sub total (incl. tax)", invoice.sub_total_including_taxes_amount_cents, True))
    if invoice.credit_notes_amount_cents:
        rows.append(("Credit notes", -invoice.credit_notes_amount_cents, False))
    if invoice.prepaid_credit_amount_cents:
        rows.append(("Prepaid credits", -invoice.prepaid_credit_amount_cents, False))
    for label, amount, bold in rows:
        pdf.set_x(110)
        pdf.text_font(10, bold=bold)
        pdf.cell(55, 7, label)
        pdf.cell(35, 7, money(amount, currency), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(110)
    pdf.text_font(12, bold=True)
    pdf.cell(55, 9, "Total due", border="T")
    pdf.cell(35, 9, money(invoice.total_amount_cents, currency), border="T", align="R")
    pdf.ln(14)
    pdf.text_font(8)
    for note in invoice.notes:
        pdf.multi_cell(0, 5, note, new_x="LMARGIN", new_y="NEXT")
