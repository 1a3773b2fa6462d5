"""Exact money arithmetic: amounts in a currency's minor unit, rounded half-up, never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor-unit exponents that differ from 2; every other currency uses 2.
_EXPONENT_EXCEPTIONS: dict[str, int] = {
    **dict.fromkeys(
        ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI"], 0
    ),
    **dict.fromkeys(["VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    "CLF": 4,
    "UYW": 4,
}

ONE = Decimal(1)
HUNDRED = Decimal(100)
RATE_PLACES = Decimal("0.00001")


def currency_exponent(currency: str) -> int:
    return _EXPONENT_EXCEPTIONS.get(currency.upper(), 2)


def round_cents(amount_in_cents: Decimal) -> int:
    """Round an unrounded amount already expressed in minor units to a whole minor unit."""
    return int(amount_in_cents.quantize(ONE, rounding=ROUND_HALF_UP))


def to_cents(amount: Decimal, currency: str) -> int:
    """An amount in major units (e.g. 12.345 EUR) to minor units, rounded once, half-up."""
    return round_cents(amount.scaleb(currency_exponent(currency)))


def from_cents(cents: int, currency: str) -> Decimal:
    return Decimal(cents).scaleb(-currency_exponent(currency))


def round_rate(rate: Decimal) -> Decimal:
    """Rates (tax rates, weighted averages) are exposed with 5 decimals, as Lago does."""
    return rate.quantize(RATE_PLACES, rounding=ROUND_HALF_UP)
