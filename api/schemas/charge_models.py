"""Charge properties validated per charge model, with Lago's field names and error codes.

Amounts are decimal strings (floats would lose cents); tier bounds are numbers. Tiers either
follow each other with a one-unit step (0-10, 11-20, 21-) or are adjacent (0-0.1, 0.1-1, 1-),
the last one open-ended. Only the keys a model uses are kept, as Lago does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from api.errors import FieldErrors

CHARGE_MODELS = (
    "standard",
    "graduated",
    "graduated_percentage",
    "package",
    "percentage",
    "volume",
    "dynamic",
)
GROUPING_KEYS = ("grouped_by", "pricing_group_keys")
MODEL_KEYS: dict[str, tuple[str, ...]] = {
    "standard": ("amount", *GROUPING_KEYS),
    "graduated": ("graduated_ranges",),
    "graduated_percentage": ("graduated_percentage_ranges",),
    "package": ("amount", "free_units", "package_size"),
    "percentage": (
        "rate",
        "fixed_amount",
        "free_units_per_events",
        "free_units_per_total_aggregation",
        "per_transaction_min_amount",
        "per_transaction_max_amount",
    ),
    "volume": ("volume_ranges",),
    "dynamic": GROUPING_KEYS,
}
# Beyond this an amount cannot be multiplied by usage inside Decimal(38, 12) safely.
MAX_AMOUNT = Decimal(10) ** 15


def decimal_amount(value: Any) -> Decimal | None:
    """A non-negative decimal given as a string, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount >= MAX_AMOUNT:
        return None
    return amount


def _bound(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        bound = Decimal(str(value))
    except InvalidOperation:
        return None
    return bound if bound.is_finite() and 0 <= bound < MAX_AMOUNT else None


def _valid_chain(ranges: Sequence[Any], step: Decimal) -> bool:
    """Tiers start at 0, each at the previous end + step, every end above its start, last open."""
    expected = Decimal(0)
    for index, tier in enumerate(ranges):
        start = _bound(tier.get("from_value"))
        end_value = tier.get("to_value")
        last = index == len(ranges) - 1
        if start is None or start != expected:
            return False
        if last:
            return end_value is None
        end = _bound(end_value)
        if end is None or end <= start:
            return False
        expected = end + step
    return True


def _check_ranges(
    properties: Mapping[str, Any], key: str, errors: FieldErrors, amount_fields: Sequence[str]
) -> None:
    ranges = properties.get(key)
    if not isinstance(ranges, list) or not ranges:
        errors.add(key, f"missing_{key}")
        return
    if not all(isinstance(tier, dict) for tier in ranges):
        errors.add(key, f"invalid_{key}")
        return
    for tier in ranges:
        for field in amount_fields:
            if decimal_amount(tier.get(field)) is None:
                errors.add(field, "invalid_rate" if field == "rate" else "invalid_amount")
    if not (_valid_chain(ranges, Decimal(1)) or _valid_chain(ranges, Decimal(0))):
        errors.add(key, f"invalid_{key}")


def _check_grouping(properties: Mapping[str, Any], errors: FieldErrors) -> None:
    for key in GROUPING_KEYS:
        keys = properties.get(key)
        if keys is None or keys == []:
            continue
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            errors.add(key, "invalid_type")


def _check_optional_amount(
    properties: Mapping[str, Any], key: str, code: str, errors: FieldErrors
) -> None:
    if properties.get(key) is not None and decimal_amount(properties[key]) is None:
        errors.add(key, code)


def _check_percentage(properties: Mapping[str, Any], errors: FieldErrors) -> None:
    if decimal_amount(properties.get("rate")) is None:
        errors.add("rate", "invalid_rate")
    _check_optional_amount(properties, "fixed_amount", "invalid_fixed_amount", errors)
    free_events = properties.get("free_units_per_events")
    if free_events is not None and (
        isinstance(free_events, bool) or not isinstance(free_events, int) or free_events <= 0
    ):
        errors.add("free_units_per_events", "invalid_free_units_per_events")
    _check_optional_amount(
        properties,
        "free_units_per_total_aggregation",
        "invalid_free_units_per_total_aggregation",
        errors,
    )
    _check_optional_amount(properties, "per_transaction_min_amount", "invalid_amount", errors)
    _check_optional_amount(properties, "per_transaction_max_amount", "invalid_amount", errors)
    low = decimal_amount(properties.get("per_transaction_min_amount"))
    high = decimal_amount(properties.get("per_transaction_max_amount"))
    if low is not None and high is not None and low > high:
        errors.add(
            "per_transaction_max_amount", "per_transaction_max_lower_than_per_transaction_min"
        )


def _check_package(properties: Mapping[str, Any], errors: FieldErrors) -> None:
    if decimal_amount(properties.get("amount")) is None:
        errors.add("amount", "invalid_amount")
    free_units = properties.get("free_units", 0)
    if isinstance(free_units, bool) or not isinstance(free_units, int) or free_units < 0:
        errors.add("free_units", "invalid_free_units")
    size = properties.get("package_size")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        errors.add("package_size", "invalid_package_size")


def check_properties(
    charge_model: str,
    properties: Mapping[str, Any],
    aggregation_type: str | None,
    errors: FieldErrors,
) -> None:
    """Add Lago's errors for ``properties`` of ``charge_model`` to ``errors``."""
    if charge_model in ("percentage", "graduated_percentage") and aggregation_type == "latest_agg":
        errors.add("billable_metric", "invalid_value")
    if charge_model == "standard":
        if decimal_amount(properties.get("amount")) is None:
            errors.add("amount", "invalid_amount")
    elif charge_model == "graduated":
        _check_ranges(properties, "graduated_ranges", errors, ("per_unit_amount", "flat_amount"))
    elif charge_model == "volume":
        _check_ranges(properties, "volume_ranges", errors, ("per_unit_amount", "flat_amount"))
    elif charge_model == "graduated_percentage":
        _check_ranges(properties, "graduated_percentage_ranges", errors, ("rate", "flat_amount"))
    elif charge_model == "package":
        _check_package(properties, errors)
    elif charge_model == "percentage":
        _check_percentage(properties, errors)
    _check_grouping(properties, errors)


def kept_properties(charge_model: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """The properties the model uses, in Lago's shape (package free_units defaults to 0)."""
    kept = {key: properties[key] for key in MODEL_KEYS[charge_model] if key in properties}
    if charge_model == "package":
        kept.setdefault("free_units", 0)
    return kept


def grouping_keys(properties: Mapping[str, Any]) -> list[str]:
    for key in GROUPING_KEYS:
        keys = properties.get(key)
        if isinstance(keys, list) and keys:
            return [str(k) for k in keys]
    return []
