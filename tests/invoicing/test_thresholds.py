"""Which usage thresholds a subscription's lifetime usage crosses (pure, no warehouse)."""

from __future__ import annotations

from uuid import uuid4

from orchestration.invoices.progressive import Crossing, UsageThreshold, crossed_thresholds

TEN = UsageThreshold(uuid4(), 1_000, recurring=False)
TWENTY = UsageThreshold(uuid4(), 2_000, recurring=False)
STEP = UsageThreshold(uuid4(), 1_500, recurring=True)


def levels(crossings: list[Crossing]) -> list[int]:
    return [c.crossed_amount_cents for c in crossings]


def test_a_threshold_is_crossed_when_usage_reaches_it() -> None:
    assert levels(crossed_thresholds([TEN], billed_cents=0, lifetime_cents=999)) == []
    assert levels(crossed_thresholds([TEN], billed_cents=0, lifetime_cents=1_000)) == [1_000]


def test_fixed_thresholds_fire_once_on_lifetime_usage() -> None:
    # Several at once: one invoice applies both.
    assert levels(crossed_thresholds([TEN, TWENTY], 0, 2_500)) == [1_000, 2_000]
    # Billed usage past a threshold: it fired in an earlier period.
    assert levels(crossed_thresholds([TEN, TWENTY], 1_200, 1_900)) == []
    # Already applied by an issued invoice (e.g. billed usage re-read lower while re-rating).
    assert crossed_thresholds([TEN], 0, 1_200, applied=[(TEN.id, 1_000)]) == []


def test_recurring_threshold_steps_above_the_largest_fixed_one() -> None:
    # Steps at 2000 + 1500 n. Billed 2600: (2600 - 2000) mod 1500 = 600; 600 + 899 new < 1500.
    assert levels(crossed_thresholds([TEN, TWENTY, STEP], 2_600, 3_499)) == []
    # 600 + 900 = 1500 >= 1500: the step at 3500 fires.
    assert levels(crossed_thresholds([TEN, TWENTY, STEP], 2_600, 3_500)) == [3_500]
    # Usage jumping over two steps fires once, at the highest step reached.
    assert levels(crossed_thresholds([TEN, TWENTY, STEP], 2_600, 5_100)) == [5_000]
    # Alone, a recurring threshold steps from 0.
    assert levels(crossed_thresholds([STEP], 0, 1_500)) == [1_500]
    # A step an issued invoice applied does not fire again.
    assert crossed_thresholds([STEP], 0, 1_600, applied=[(STEP.id, 1_500)]) == []


def test_fixed_and_recurring_cross_together() -> None:
    # Billed 0 to 4000: 1000 and 2000, and the step at 3500.
    assert levels(crossed_thresholds([TEN, TWENTY, STEP], 0, 4_000)) == [1_000, 2_000, 3_500]
