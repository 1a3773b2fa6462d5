"""The invoice computation: pure, exact-decimal steps applied in Lago's order.

fees -> progressive-billing credit -> coupons (before tax) -> taxes on the discounted fees
-> credit notes -> wallet (prepaid) credits. Every amount is an integer in the currency's minor
unit or an exact ``Decimal`` of minor units; nothing here touches the warehouse, so the same code
serves the invoice asset, the invoice preview and the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from uuid import UUID

from orchestration.invoices.money import HUNDRED, currency_exponent, round_cents, round_rate

ZERO = Decimal(0)
SHARE_PLACES = Decimal("0.00001")  # coupon shares are stored with 5 decimals (of a cent)


# --- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tax:
    code: str
    rate: Decimal  # percent, e.g. Decimal("20")
    name: str = ""


@dataclass(frozen=True)
class FeeInput:
    fee_id: UUID
    amount_cents: int
    fee_type: str  # subscription | charge | commitment
    plan_id: UUID | None = None
    billable_metric_id: UUID | None = None
    taxes: tuple[Tax, ...] = ()
    progressive_credit_cents: int = 0  # usage already billed by progressive invoices


@dataclass(frozen=True)
class AppliedCoupon:
    """A coupon applied to the customer, with its balances carried between invoices."""

    id: UUID
    coupon_type: str  # fixed_amount | percentage
    frequency: str  # once | recurring | forever
    applied_at: datetime
    amount_cents: int = 0
    percentage_rate: Decimal = ZERO
    remaining_amount_cents: int | None = None  # balance of a fixed "once" coupon
    remaining_frequency: int | None = None  # invoices left for a "recurring" coupon
    billable_metric_ids: frozenset[UUID] = frozenset()
    plan_ids: frozenset[UUID] = frozenset()

    @property
    def precedence(self) -> int:
        """Metric-limited coupons first, then plan-limited, then unrestricted."""
        if self.billable_metric_ids:
            return 0
        return 1 if self.plan_ids else 2

    def applies_to(self, fee: FeeInput) -> bool:
        if self.billable_metric_ids:
            return fee.billable_metric_id in self.billable_metric_ids
        if self.plan_ids:
            return fee.plan_id in self.plan_ids
        return True


@dataclass(frozen=True)
class CreditNoteBalance:
    credit_note_id: UUID
    remaining_cents: int
    created_at: datetime


@dataclass(frozen=True)
class WalletBalance:
    wallet_id: UUID
    balance_credits: Decimal
    rate_amount: Decimal  # money per credit
    priority: int
    created_at: datetime
    fee_types: frozenset[str] = frozenset()
    billable_metric_ids: frozenset[UUID] = frozenset()

    def applies_to(self, fee: FeeInput) -> bool:
        if not self.fee_types and not self.billable_metric_ids:
            return True
        return fee.fee_type in self.fee_types or (
            fee.billable_metric_id is not None
            and fee.billable_metric_id in self.billable_metric_ids
        )


# --- outputs --------------------------------------------------------------------------------------


@dataclass
class FeeResult:
    fee_id: UUID
    amount_cents: int
    progressive_credit_cents: int
    precise_coupons_amount: Decimal = ZERO
    taxable_base: Decimal = ZERO
    precise_taxes_amount: Decimal = ZERO
    taxes_rate: Decimal = ZERO


@dataclass(frozen=True)
class CouponCredit:
    applied_coupon_id: UUID
    amount_cents: int
    remaining_amount_cents: int | None  # balance left after this invoice (fixed once)
    remaining_frequency: int | None  # invoices left after this one (recurring)
    terminated: bool
    shares: dict[UUID, Decimal]


@dataclass(frozen=True)
class AppliedTax:
    code: str
    name: str
    rate: Decimal
    base_amount: Decimal
    amount_cents: int


@dataclass(frozen=True)
class CreditNoteConsumption:
    credit_note_id: UUID
    amount_cents: int


@dataclass(frozen=True)
class WalletConsumption:
    wallet_id: UUID
    amount_cents: int
    credits: Decimal


@dataclass
class InvoiceComputation:
    """An invoice's steps and totals. Each total is computed once, on first read: the steps fill
    the lists in order, and compute_invoice reads a total only after the lists it sums are set."""

    currency: str
    fees: list[FeeResult]
    coupon_credits: list[CouponCredit] = field(default_factory=list)
    applied_taxes: list[AppliedTax] = field(default_factory=list)
    credit_note_consumptions: list[CreditNoteConsumption] = field(default_factory=list)
    wallet_consumptions: list[WalletConsumption] = field(default_factory=list)

    @cached_property
    def fees_amount_cents(self) -> int:
        return sum(fee.amount_cents for fee in self.fees)

    @cached_property
    def progressive_billing_credit_amount_cents(self) -> int:
        return sum(fee.progressive_credit_cents for fee in self.fees)

    @cached_property
    def coupons_amount_cents(self) -> int:
        return sum(credit.amount_cents for credit in self.coupon_credits)

    @cached_property
    def taxes_amount_cents(self) -> int:
        return sum(tax.amount_cents for tax in self.applied_taxes)

    @cached_property
    def sub_total_excluding_taxes_amount_cents(self) -> int:
        return (
            self.fees_amount_cents
            - self.progressive_billing_credit_amount_cents
            - self.coupons_amount_cents
        )

    @cached_property
    def sub_total_including_taxes_amount_cents(self) -> int:
        return self.sub_total_excluding_taxes_amount_cents + self.taxes_amount_cents

    @cached_property
    def credit_notes_amount_cents(self) -> int:
        return sum(c.amount_cents for c in self.credit_note_consumptions)

    @cached_property
    def prepaid_credit_amount_cents(self) -> int:
        return sum(c.amount_cents for c in self.wallet_consumptions)

    @cached_property
    def total_amount_cents(self) -> int:
        return (
            self.sub_total_including_taxes_amount_cents
            - self.credit_notes_amount_cents
            - self.prepaid_credit_amount_cents
        )

    @cached_property
    def taxes_rate(self) -> Decimal:
        """Average tax rate weighted by each fee's taxable base, as Lago exposes it."""
        total_base = sum((fee.taxable_base for fee in self.fees), ZERO)
        if total_base <= 0:
            return ZERO
        weighted = sum((fee.taxable_base * fee.taxes_rate for fee in self.fees), ZERO)
        return round_rate(weighted / total_base)


# --- the steps ------------------------------------------------------------------------------------


def compute_invoice(
    currency: str,
    fees: Sequence[FeeInput],
    coupons: Iterable[AppliedCoupon] = (),
    credit_notes: Iterable[CreditNoteBalance] = (),
    wallets: Iterable[WalletBalance] = (),
) -> InvoiceComputation:
    results = [
        FeeResult(
            fee_id=fee.fee_id,
            amount_cents=fee.amount_cents,
            progressive_credit_cents=min(fee.progressive_credit_cents, fee.amount_cents),
        )
        for fee in fees
    ]
    invoice = InvoiceComputation(currency=currency, fees=results)
    invoice.coupon_credits = apply_coupons(fees, results, coupons)
    invoice.applied_taxes = apply_taxes(fees, results)
    after_taxes = invoice.sub_total_including_taxes_amount_cents
    invoice.credit_note_consumptions = apply_credit_notes(after_taxes, credit_notes)
    invoice.wallet_consumptions = apply_wallets(
        currency,
        fees,
        results,
        after_taxes - invoice.credit_notes_amount_cents,
        wallets,
    )
    return invoice


def _undiscounted(result: FeeResult) -> Decimal:
    return Decimal(result.amount_cents - result.progressive_credit_cents) - (
        result.precise_coupons_amount
    )


def coupon_order(coupons: Iterable[AppliedCoupon]) -> list[AppliedCoupon]:
    return sorted(coupons, key=lambda c: (c.precedence, c.applied_at, str(c.id)))


def coupon_amount(coupon: AppliedCoupon, base: Decimal) -> int:
    """What the coupon takes off a base (minor units) of eligible, not yet discounted fees."""
    whole_base = int(base)  # a discount is a whole number of minor units never above the base
    if coupon.coupon_type == "percentage":
        return min(round_cents(base * coupon.percentage_rate / HUNDRED), whole_base)
    if coupon.frequency == "once" and coupon.remaining_amount_cents is not None:
        return min(coupon.remaining_amount_cents, whole_base)
    return min(coupon.amount_cents, whole_base)


def apply_coupons(
    fees: Sequence[FeeInput], results: list[FeeResult], coupons: Iterable[AppliedCoupon]
) -> list[CouponCredit]:
    credits = []
    for coupon in coupon_order(coupons):
        if coupon.frequency == "recurring" and (coupon.remaining_frequency or 0) <= 0:
            continue
        eligible = [
            result
            for fee, result in zip(fees, results, strict=True)
            if coupon.applies_to(fee) and _undiscounted(result) > 0
        ]
        base = sum((_undiscounted(result) for result in eligible), ZERO)
        amount = coupon_amount(coupon, base) if base > 0 else 0
        if amount <= 0:
            continue
        shares = _allocate(amount, eligible, base)
        credits.append(_consume(coupon, amount, shares))
    return credits


def _allocate(amount: int, eligible: list[FeeResult], base: Decimal) -> dict[UUID, Decimal]:
    """Split a coupon over fees in proportion to each fee's undiscounted part (5 decimals)."""
    shares: dict[UUID, Decimal] = {}
    for result in eligible:
        remaining = _undiscounted(result)
        share = (Decimal(amount) * remaining / base).quantize(SHARE_PLACES, ROUND_HALF_UP)
        share = min(share, remaining)
        result.precise_coupons_amount += share
        shares[result.fee_id] = share
    return shares


def _consume(coupon: AppliedCoupon, amount: int, shares: dict[UUID, Decimal]) -> CouponCredit:
    remaining_amount = None
    remaining_frequency = coupon.remaining_frequency
    if coupon.frequency == "once":
        if coupon.coupon_type == "fixed_amount":
            balance = coupon.amount_cents
            if coupon.remaining_amount_cents is not None:
                balance = coupon.remaining_amount_cents
            remaining_amount = balance - amount
            terminated = remaining_amount <= 0
        else:
            terminated = True
    elif coupon.frequency == "recurring":
        remaining_frequency = (coupon.remaining_frequency or 0) - 1
        terminated = remaining_frequency <= 0
    else:
        terminated = False
    return CouponCredit(
        applied_coupon_id=coupon.id,
        amount_cents=amount,
        remaining_amount_cents=remaining_amount,
        remaining_frequency=remaining_frequency,
        terminated=terminated,
        shares=shares,
    )


def apply_taxes(fees: Sequence[FeeInput], results: list[FeeResult]) -> list[AppliedTax]:
    """Tax each fee on ``fee - credits``; round each tax once, on the invoice."""
    bases: dict[str, Decimal] = {}
    taxes: dict[str, Tax] = {}
    for fee, result in zip(fees, results, strict=True):
        result.taxable_base = max(_undiscounted(result), ZERO)
        rate = ZERO
        for tax in fee.taxes:
            rate += tax.rate
            bases[tax.code] = bases.get(tax.code, ZERO) + result.taxable_base
            taxes[tax.code] = tax
        result.taxes_rate = rate
        result.precise_taxes_amount = result.taxable_base * rate / HUNDRED
    return [
        AppliedTax(
            code=code,
            name=taxes[code].name,
            rate=taxes[code].rate,
            base_amount=bases[code],
            amount_cents=round_cents(bases[code] * taxes[code].rate / HUNDRED),
        )
        for code in sorted(bases)
    ]


def apply_credit_notes(
    amount_cents: int, credit_notes: Iterable[CreditNoteBalance]
) -> list[CreditNoteConsumption]:
    """Consume available credit notes, oldest first, up to the tax-inclusive amount."""
    consumptions = []
    left = amount_cents
    for note in sorted(credit_notes, key=lambda n: (n.created_at, str(n.credit_note_id))):
        if left <= 0:
            break
        used = min(note.remaining_cents, left)
        if used > 0:
            consumptions.append(CreditNoteConsumption(note.credit_note_id, used))
            left -= used
    return consumptions


def covered_cents(
    wallet: WalletBalance, fees: Sequence[FeeInput], results: Sequence[FeeResult]
) -> int:
    """The tax-inclusive amount of the fees a limited wallet may pay, rounded once."""
    covered = sum(
        (
            result.taxable_base + result.precise_taxes_amount
            for fee, result in zip(fees, results, strict=True)
            if wallet.applies_to(fee)
        ),
        ZERO,
    )
    return round_cents(covered)


def apply_wallets(
    currency: str,
    fees: Sequence[FeeInput],
    results: list[FeeResult],
    amount_cents: int,
    wallets: Iterable[WalletBalance],
) -> list[WalletConsumption]:
    """Spend wallet credits on the tax-inclusive amount, by priority then creation date.

    A limited wallet pays at most the tax-inclusive amount of the fees it covers.
    """
    exponent = currency_exponent(currency)
    credit_places = Decimal(1).scaleb(-exponent)
    consumptions = []
    left = amount_cents
    for wallet in sorted(wallets, key=lambda w: (w.priority, w.created_at, str(w.wallet_id))):
        if left <= 0:
            break
        cap = left
        if wallet.fee_types or wallet.billable_metric_ids:
            cap = min(cap, covered_cents(wallet, fees, results))
        available = round_cents((wallet.balance_credits * wallet.rate_amount).scaleb(exponent))
        used = min(available, cap)
        if used <= 0:
            continue
        credits = (Decimal(used).scaleb(-exponent) / wallet.rate_amount).quantize(
            credit_places, ROUND_HALF_UP
        )
        consumptions.append(
            WalletConsumption(wallet.wallet_id, used, min(credits, wallet.balance_credits))
        )
        left -= used
    return consumptions
