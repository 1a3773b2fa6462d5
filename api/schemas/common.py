"""Shapes and helpers shared by every resource."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Bounded so that no valid request can overflow a column (Int64 cents, Decimal(38, 12)).
MAX_CENTS = 10**15
Cents = Annotated[int, Field(ge=0, le=MAX_CENTS)]
ShortText = Annotated[str, StringConstraints(max_length=255)]
RequiredText = Annotated[
    str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)
]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
Code = RequiredText


class Body(BaseModel):
    """Request bodies ignore unknown fields, as Lago does."""

    model_config = ConfigDict(extra="ignore")


def iso(value: datetime | None) -> str | None:
    """Lago's timestamp format: ISO 8601 UTC with a Z."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decimal_text(value: Decimal | None) -> str | None:
    """A decimal as Lago prints it: no exponent, no trailing zeros beyond one decimal."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def as_float(value: Decimal | None) -> float | None:
    # Only for response fields Lago types as JSON numbers (tax rates, coupon percentages).
    return None if value is None else float(value)


def load_json(text: str, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def dump_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)
