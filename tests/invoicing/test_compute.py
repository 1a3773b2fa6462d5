"""The invoice computation steps, in exact decimals, against billing-semantics.md's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.invoices.compute import (
    AppliedCoupon,
    CreditNoteBalance,
    FeeInput,
    Tax,
    WalletBalance,
    compute_invoice,
    coupon_order,
)
from orchestration.invoices.money import to_cents

T0 = datetime(2024, 1, 1, tzinfo=UTC)
VAT = Tax("vat", Decimal("19.6"), "VAT")
PLAN = uuid4()
METRIC = uuid4()


def fee(amount_cents: int, **kwargs: object) -> FeeInput:
    defaults: dict[str, object] = {"fee_type": "charge", "plan_id": PLAN, "taxes": (VAT,)}
    return FeeInput(fee_id=uuid4(), amount_cents=amount_cents, **{**defaults, **kwargs})  # type: ignore[arg-type]


def coupon(**kwargs: object) -> AppliedCoupon:
    defaults: dict[str, object] = {
        "coupon_type": "fixed_amount",
        "frequency": "forever",
        "applied_at": T0,
    }
    return AppliedCoupon(id=uuid4(), **{**defaults, **kwargs})  # type: ignore[arg-type]


def test_currency_minor_units_round_half_up() -> None:
    assert to_cents(Decimal("14.515"), "EUR") == 1452
    assert to_cents(Decimal("14.514999"), "EUR") == 1451
    assert to_cents(Decimal("100.5"), "JPY") == 101
    assert to_cents(Decimal("1.0005"), "KWD") == 1001


def test_each_tax_is_rounded_once_per_invoice() -> None:
    # 7197 * 19.6% = 1410.588 and 2443 * 19.6% = 478.824: once-rounded 1889, per fee it'd be 1890.
    invoice = compute_invoice("EUR", [fee(7197), fee(2443)])
    assert invoice.taxes_amount_cents == 1889
    assert [t.amount_cents for t in invoice.applied_taxes] == [1889]
    assert invoice.sub_total_excluding_taxes_amount_cents == 9640
    assert invoice.sub_total_including_taxes_amount_cents == 9640 + 1889
    assert invoice.total_amount_cents == 11529


def test_taxes_rate_is_weighted_by_taxable_base() -> None:
    reduced = Tax("reduced", Decimal("5.5"))
    invoice = compute_invoice(
        "EUR", [fee(1000, taxes=(VAT,)), fee(3000, taxes=(reduced,)), fee(500, taxes=())]
    )
    # (1000 * 19.6 + 3000 * 5.5 + 500 * 0) / 4500 = 8.02222...
    assert invoice.taxes_rate == Decimal("8.02222")
    assert invoice.taxes_amount_cents == 196 + 165


def test_several_taxes_on_one_fee_are_each_rounded_on_the_invoice() -> None:
    state = Tax("state", Decimal("6.25"))
    city = Tax("city", Decimal("2.25"))
    invoice = compute_invoice("USD", [fee(999, taxes=(state, city)), fee(1, taxes=(state,))])
    by_code = {t.code: t.amount_cents for t in invoice.applied_taxes}
    assert by_code == {"state": 63, "city": 22}  # 62.5 -> 63 ; 22.4775 -> 22


def test_coupon_order_metric_then_plan_then_unrestricted_oldest_first() -> None:
    unrestricted_old = coupon(applied_at=T0)
    plan_new = coupon(applied_at=T0 + timedelta(days=2), plan_ids=frozenset({PLAN}))
    plan_old = coupon(applied_at=T0 + timedelta(days=1), plan_ids=frozenset({PLAN}))
    metric = coupon(applied_at=T0 + timedelta(days=3), billable_metric_ids=frozenset({METRIC}))
    ordered = coupon_order([unrestricted_old, plan_new, metric, plan_old])
    assert ordered == [metric, plan_old, plan_new, unrestricted_old]


def test_coupon_split_in_proportion_to_undiscounted_part_with_five_decimals() -> None:
    metered = fee(3000, billable_metric_id=METRIC)
    subscription = fee(1000, fee_type="subscription")
    metric_coupon = coupon(amount_cents=1000, billable_metric_ids=frozenset({METRIC}))
    everything = coupon(amount_cents=1000, applied_at=T0 - timedelta(days=1))
    invoice = compute_invoice("EUR", [metered, subscription], coupons=[everything, metric_coupon])
    metric_credit, all_credit = invoice.coupon_credits
    assert metric_credit.applied_coupon_id == metric_coupon.id
    assert metric_credit.shares == {metered.fee_id: Decimal(1000)}
    # Second coupon over 2000 + 1000 undiscounted: 2/3 and 1/3 of 1000, 5 decimals.
    assert all_credit.shares == {
        metered.fee_id: Decimal("666.66667"),
        subscription.fee_id: Decimal("333.33333"),
    }
    assert invoice.coupons_amount_cents == 2000
    # Taxes on the discounted fees: (1333.33333 + 666.66667) * 19.6% = 392
    assert invoice.taxes_amount_cents == 392
    assert invoice.total_amount_cents == 4000 - 2000 + 392


def test_fixed_once_coupon_keeps_its_leftover_for_later_invoices() -> None:
    once = coupon(frequency="once", amount_cents=5000, remaining_amount_cents=5000)
    first = compute_invoice("EUR", [fee(3000, taxes=())], coupons=[once])
    (credit,) = first.coupon_credits
    assert (credit.amount_cents, credit.remaining_amount_cents, credit.terminated) == (
        3000,
        2000,
        False,
    )
    assert first.total_amount_cents == 0
    carried = coupon(frequency="once", amount_cents=5000, remaining_amount_cents=2000)
    second = compute_invoice("EUR", [fee(3000, taxes=())], coupons=[carried])
    (credit,) = second.coupon_credits
    assert (credit.amount_cents, credit.remaining_amount_cents, credit.terminated) == (
        2000,
        0,
        True,
    )
    assert second.total_amount_cents == 1000


def test_recurring_coupon_counts_down_and_stops() -> None:
    recurring = coupon(frequency="recurring", amount_cents=500, remaining_frequency=1)
    invoice = compute_invoice("EUR", [fee(3000, taxes=())], coupons=[recurring])
    (credit,) = invoice.coupon_credits
    assert (credit.remaining_frequency, credit.terminated) == (0, True)
    exhausted = coupon(frequency="recurring", amount_cents=500, remaining_frequency=0)
    assert compute_invoice("EUR", [fee(3000)], coupons=[exhausted]).coupon_credits == []


def test_percentage_coupon_is_rounded_and_capped_at_the_base() -> None:
    pct = coupon(coupon_type="percentage", percentage_rate=Decimal("12.5"))
    invoice = compute_invoice("EUR", [fee(1001, taxes=())], coupons=[pct])
    assert invoice.coupons_amount_cents == 125  # 125.125 -> 125
    big = coupon(coupon_type="percentage", percentage_rate=Decimal("100"))
    fixed = coupon(amount_cents=10_000)
    capped = compute_invoice("EUR", [fee(1001, taxes=())], coupons=[fixed, big])
    assert capped.coupons_amount_cents == 1001
    assert capped.total_amount_cents == 0


def test_coupon_restricted_to_another_plan_gives_nothing() -> None:
    other = coupon(amount_cents=100, plan_ids=frozenset({uuid4()}))
    invoice = compute_invoice("EUR", [fee(1000)], coupons=[other])
    assert invoice.coupon_credits == []


def test_progressive_billing_credit_comes_before_coupons_and_taxes() -> None:
    usage = fee(5000, progressive_credit_cents=2000)
    pct = coupon(coupon_type="percentage", percentage_rate=Decimal("10"))
    invoice = compute_invoice("EUR", [usage], coupons=[pct])
    assert invoice.progressive_billing_credit_amount_cents == 2000
    assert invoice.coupons_amount_cents == 300  # 10% of the 3000 not yet billed
    assert invoice.sub_total_excluding_taxes_amount_cents == 2700
    assert invoice.taxes_amount_cents == 529  # 2700 * 19.6% = 529.2
    assert invoice.total_amount_cents == 3229


def test_credit_notes_then_wallets_apply_after_tax() -> None:
    note_old = CreditNoteBalance(uuid4(), 500, T0)
    note_new = CreditNoteBalance(uuid4(), 10_000, T0 + timedelta(days=1))
    wallet = WalletBalance(uuid4(), Decimal("100"), Decimal("1"), priority=50, created_at=T0)
    invoice = compute_invoice(
        "EUR", [fee(10_000)], credit_notes=[note_new, note_old], wallets=[wallet]
    )
    assert invoice.sub_total_including_taxes_amount_cents == 11_960
    assert [(c.credit_note_id, c.amount_cents) for c in invoice.credit_note_consumptions] == [
        (note_old.credit_note_id, 500),
        (note_new.credit_note_id, 10_000),
    ]
    assert invoice.credit_notes_amount_cents == 10_500
    assert invoice.prepaid_credit_amount_cents == 1_460
    assert invoice.wallet_consumptions[0].credits == Decimal("14.60")
    assert invoice.total_amount_cents == 0


def test_wallet_credits_convert_with_rate_and_round_to_currency_precision() -> None:
    # Spending 22.00 from a rate-10 wallet uses 2.2 credits.
    wallet = WalletBalance(uuid4(), Decimal("1000"), Decimal("10"), priority=50, created_at=T0)
    invoice = compute_invoice("USD", [fee(2200, taxes=())], wallets=[wallet])
    (used,) = invoice.wallet_consumptions
    assert (used.amount_cents, used.credits) == (2200, Decimal("2.20"))
    assert invoice.total_amount_cents == 0


def test_wallets_by_priority_then_creation_and_limited_to_fee_types() -> None:
    late_first = WalletBalance(
        uuid4(), Decimal("5"), Decimal("1"), priority=1, created_at=T0 + timedelta(days=9)
    )
    early_second = WalletBalance(uuid4(), Decimal("1000"), Decimal("1"), priority=2, created_at=T0)
    subscription_only = WalletBalance(
        uuid4(),
        Decimal("1000"),
        Decimal("1"),
        priority=0,
        created_at=T0,
        fee_types=frozenset({"subscription"}),
    )
    fees = [fee(1000, fee_type="subscription", taxes=()), fee(4000, taxes=())]
    invoice = compute_invoice("EUR", fees, wallets=[early_second, late_first, subscription_only])
    assert [(w.wallet_id, w.amount_cents) for w in invoice.wallet_consumptions] == [
        (subscription_only.wallet_id, 1000),
        (late_first.wallet_id, 500),
        (early_second.wallet_id, 3500),
    ]


def test_zero_amount_invoice() -> None:
    invoice = compute_invoice("EUR", [fee(0)], coupons=[coupon(amount_cents=100)])
    assert invoice.coupon_credits == []
    assert invoice.total_amount_cents == 0
    assert invoice.taxes_rate == Decimal(0)


fee_amounts = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    amounts=fee_amounts,
    fixed=st.lists(st.integers(min_value=0, max_value=10**9), max_size=3),
    rates=st.lists(st.decimals(min_value=0, max_value=100, places=3), max_size=3),
    credit=st.integers(min_value=0, max_value=10**9),
    wallet=st.decimals(min_value=0, max_value=10**7, places=2),
)
def test_totals_hold_together_for_any_inputs(
    amounts: list[int], fixed: list[int], rates: list[Decimal], credit: int, wallet: Decimal
) -> None:
    fees = [fee(a, billable_metric_id=METRIC if i % 2 else None) for i, a in enumerate(amounts)]
    coupons = [coupon(amount_cents=a) for a in fixed] + [
        coupon(coupon_type="percentage", percentage_rate=r, billable_metric_ids=frozenset({METRIC}))
        for r in rates
    ]
    invoice = compute_invoice(
        "EUR",
        fees,
        coupons=coupons,
        credit_notes=[CreditNoteBalance(UUID(int=1), credit, T0)],
        wallets=[WalletBalance(UUID(int=2), wallet, Decimal(1), 1, T0)],
    )
    for result in invoice.fees:
        assert 0 <= result.precise_coupons_amount <= result.amount_cents
    assert 0 <= invoice.coupons_amount_cents <= invoice.fees_amount_cents
    for credit_line in invoice.coupon_credits:
        allocated = sum(credit_line.shares.values(), Decimal(0))
        assert abs(allocated - credit_line.amount_cents) < Decimal("0.0001") * len(fees)
    assert invoice.total_amount_cents >= 0
    assert invoice.total_amount_cents == (
        invoice.fees_amount_cents
        - invoice.coupons_amount_cents
        + invoice.taxes_amount_cents
        - invoice.credit_notes_amount_cents
        - invoice.prepaid_credit_amount_cents
    )
