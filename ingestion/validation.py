"""Validation of incoming events, shared by every endpoint.

The warehouse applies the same rules again when it stores an event (migration 0102's
``events_input_mv``): these Python checks exist to name each bad event precisely (index, field,
reason) before anything is written, and the bulk path uses them to explain a rejected file.
Both sides accept exactly the same inputs; ``tests/ingestion/test_validation_fuzz.py`` checks it.

Accepted shapes (Lago's event):
- ``transaction_id``, ``code``, ``external_subscription_id``: non-empty strings (numbers are
  accepted as their text, as Lago does); ``external_customer_id`` optional.
- ``timestamp``: optional (defaults to the time of receipt); unix seconds as a number or numeric
  string (fractions allowed, truncated to milliseconds), or an ISO-8601 date-time.
- ``properties``: optional object; ``precise_total_amount_cents``: optional decimal (string or
  number) that fits Decimal(38, 12).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from itertools import chain, repeat
from typing import Any, NamedTuple

import orjson

# DateTime64(3) ends with 2299; Lago's timestamps are unix seconds.
MAX_UNIX_SECONDS = 10_413_792_000
MAX_DECIMAL_ABS = Decimal(10) ** 26  # Decimal(38, 12) keeps 26 integer digits
NUMERIC_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
DECIMAL_PATTERN = re.compile(r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
# The same pattern as the engine's (migration 0102): both sides accept exactly these texts.
ISO_PATTERN = re.compile(
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?$"
)
REQUIRED_TEXT_FIELDS = ("transaction_id", "external_subscription_id", "code")
MILLISECOND = Decimal("0.001")
MAX_ID_NUMBER = 10**15


class Reason:
    """Machine-readable reasons, in Lago's style (``value_is_mandatory``)."""

    MANDATORY = "value_is_mandatory"
    NOT_TEXT = "value_must_be_a_string"
    NOT_OBJECT = "value_must_be_an_object"
    INVALID_TIMESTAMP = "invalid_timestamp"
    FUTURE_TIMESTAMP = "timestamp_too_far_in_the_future"
    INVALID_DECIMAL = "invalid_decimal"
    TOO_LARGE = "event_too_large"
    INVALID_JSON = "invalid_json"


@dataclass(frozen=True)
class EventError:
    index: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass(slots=True)  # not frozen: frozen dataclasses are slow to build, and this is per event
class ValidEvent:
    """An accepted event: its JSON text as stored in ``raw`` and what the response echoes."""

    line: bytes
    transaction_id: str
    external_subscription_id: str
    external_customer_id: str | None
    code: str
    timestamp_ms: int
    properties: dict[str, Any]
    precise_total_amount_cents: str | None


@dataclass(frozen=True)
class Limits:
    max_future_s: int
    max_event_bytes: int


def _text(value: Any) -> str | None:
    """A string field's value, or None when it is not text.

    Whole numbers below 10**15 count as their digits (Lago casts ids to strings); larger ones
    are refused because their text would depend on how each side prints floats.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    if abs(value) >= MAX_ID_NUMBER:
        return None
    if value == 0 and math.copysign(1.0, value) < 0:
        return "-0"  # the engine keeps the sign of a negative zero
    return str(int(value))


def parse_timestamp_ms(value: Any) -> int | None:
    """Unix milliseconds of a Lago timestamp, or None when it cannot be read."""
    if type(value) is int:  # the common case, without Decimal (bool is excluded)
        return value * 1000 if 0 <= value < MAX_UNIX_SECONDS else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    if NUMERIC_PATTERN.match(text):
        try:
            seconds = Decimal(text).quantize(MILLISECOND, rounding=ROUND_DOWN)
        except InvalidOperation:
            return None
        if not 0 <= seconds < MAX_UNIX_SECONDS:
            return None
        return int(seconds * 1000)
    if not ISO_PATTERN.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Whole seconds are exact as a float; milliseconds are truncated, as the warehouse does.
    millis = int(moment.replace(microsecond=0).timestamp()) * 1000 + moment.microsecond // 1000
    if not 0 <= millis < MAX_UNIX_SECONDS * 1000:
        return None
    return millis


def _decimal_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    if not DECIMAL_PATTERN.match(text):
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return text if abs(amount) < MAX_DECIMAL_ABS else None


def validate_event(
    event: Any, index: int, *, now_ms: int, limits: Limits, line: bytes | None = None
) -> ValidEvent | list[EventError]:
    """Check one Lago-shaped event; ``line`` is its JSON text when the caller already has it."""
    if type(event) is dict:
        common = _common_event(event, now_ms, limits, line)
        if common is not None:
            return common
    if not isinstance(event, dict):
        return [EventError(index, "event", Reason.NOT_OBJECT)]
    errors: list[EventError] = []
    texts: dict[str, str] = {}
    for field in REQUIRED_TEXT_FIELDS:
        value = event.get(field)
        text = _text(value)
        if value is None or text == "":
            errors.append(EventError(index, field, Reason.MANDATORY))
        elif text is None:
            errors.append(EventError(index, field, Reason.NOT_TEXT))
        else:
            texts[field] = text
    customer = event.get("external_customer_id")
    customer_text = _text(customer)
    if customer is not None and customer_text is None:
        errors.append(EventError(index, "external_customer_id", Reason.NOT_TEXT))
    timestamp = event.get("timestamp")
    timestamp_ms = now_ms if timestamp is None else parse_timestamp_ms(timestamp)
    if timestamp_ms is None:
        errors.append(EventError(index, "timestamp", Reason.INVALID_TIMESTAMP))
    elif timestamp_ms > now_ms + limits.max_future_s * 1000:
        errors.append(EventError(index, "timestamp", Reason.FUTURE_TIMESTAMP))
    properties = event.get("properties")
    if properties is not None and not isinstance(properties, dict):
        errors.append(EventError(index, "properties", Reason.NOT_OBJECT))
    amount = event.get("precise_total_amount_cents")
    amount_text = None if amount is None else _decimal_text(amount)
    if amount is not None and amount_text is None:
        errors.append(EventError(index, "precise_total_amount_cents", Reason.INVALID_DECIMAL))
    if line is None:
        line = orjson.dumps(event)
    if len(line) > limits.max_event_bytes:
        errors.append(EventError(index, "event", Reason.TOO_LARGE))
    if errors:
        return errors
    assert timestamp_ms is not None
    return ValidEvent(
        line=line,
        transaction_id=texts["transaction_id"],
        external_subscription_id=texts["external_subscription_id"],
        external_customer_id=customer_text,
        code=texts["code"],
        timestamp_ms=timestamp_ms,
        properties=properties or {},
        precise_total_amount_cents=amount_text,
    )


UsualFields = tuple[str, str, str, str | None, int | None, dict[str, Any] | None]


def usual_fields(event: Any, latest_ms: int) -> UsualFields | None:
    """The fields of an event of the usual shape, else None (the full checks decide).

    Producers nearly always send string ids, an integer unix timestamp no later than
    ``latest_ms`` (or none), an object of properties and no amount: for those the answer is
    clear after a few type checks, as the full checks would give it. Returns (transaction_id,
    subscription, code, customer, timestamp in seconds or None, properties).
    """
    if type(event) is not dict:
        return None
    transaction_id = event.get("transaction_id")
    subscription = event.get("external_subscription_id")
    code = event.get("code")
    customer = event.get("external_customer_id")
    timestamp = event.get("timestamp")
    properties = event.get("properties")
    if (
        type(transaction_id) is not str
        or type(subscription) is not str
        or type(code) is not str
        or not (transaction_id and subscription and code)
        or not (customer is None or type(customer) is str)
        or not (properties is None or type(properties) is dict)
        or event.get("precise_total_amount_cents") is not None
        or not (timestamp is None or type(timestamp) is int and 0 <= timestamp * 1000 <= latest_ms)
    ):
        return None
    return transaction_id, subscription, code, customer, timestamp, properties


class UsualColumns(NamedTuple):
    """A batch's fields as columns, when every event has the usual shape (``usual_columns``)."""

    transaction_ids: list[str]
    subscriptions: list[str]
    codes: list[str]
    customers: list[str | None]
    timestamps: list[int | None]
    properties: list[dict[str, Any] | None]


NONE_TYPE = type(None)
STR_TYPE = frozenset({str})
STR_OR_NONE = frozenset({str, NONE_TYPE})
DICT_OR_NONE = frozenset({dict, NONE_TYPE})
INT_TYPE = frozenset({int})
INT_OR_NONE = frozenset({int, NONE_TYPE})
NONE_ONLY = frozenset({NONE_TYPE})


def usual_columns(events: list[Any], latest_ms: int) -> UsualColumns | None:
    """The fields of a batch whose events all have the usual shape, as columns; else None.

    The verdict of ``usual_fields`` on every event, reached column by column: each field is
    taken from all events by one ``map`` and checked by the set of its types (and its
    extremes), so no Python code runs per event. None when any event has another shape (the
    caller then goes event by event).
    """
    if not events:
        return UsualColumns([], [], [], [], [], [])
    if set(map(type, events)) != {dict}:
        return None

    def column(name: str) -> list[Any]:
        return list(map(dict.get, events, repeat(name)))

    transaction_ids, subscriptions, codes = (
        column("transaction_id"),
        column("external_subscription_id"),
        column("code"),
    )
    if (
        set(map(type, chain(transaction_ids, subscriptions, codes))) != STR_TYPE
        or "" in transaction_ids
        or "" in subscriptions
        or "" in codes
    ):
        return None
    customers, properties = column("external_customer_id"), column("properties")
    if not set(map(type, customers)) <= STR_OR_NONE or not set(map(type, properties)) <= (
        DICT_OR_NONE
    ):
        return None
    if set(map(type, column("precise_total_amount_cents"))) != NONE_ONLY:
        return None
    timestamps = column("timestamp")
    kinds = set(map(type, timestamps))
    if kinds == INT_TYPE:
        given = timestamps
    elif kinds <= INT_OR_NONE:
        given = [timestamp for timestamp in timestamps if timestamp is not None]
    else:
        return None
    if given and not (min(given) >= 0 and max(given) * 1000 <= latest_ms):
        return None
    return UsualColumns(transaction_ids, subscriptions, codes, customers, timestamps, properties)


def latest_timestamp_ms(now_ms: int, limits: Limits) -> int:
    """The latest event timestamp accepted now (the future window, within the engine's range)."""
    return min(now_ms + limits.max_future_s * 1000, (MAX_UNIX_SECONDS - 1) * 1000)


def _common_event(
    event: dict[str, Any], now_ms: int, limits: Limits, line: bytes | None
) -> ValidEvent | None:
    """The event when it has the usual shape (``usual_fields``) and is valid, else None."""
    fields = usual_fields(event, latest_timestamp_ms(now_ms, limits))
    if fields is None:
        return None
    transaction_id, subscription, code, customer, timestamp, properties = fields
    if line is None:
        line = orjson.dumps(event)
    if len(line) > limits.max_event_bytes:
        return None
    timestamp_ms = now_ms if timestamp is None else timestamp * 1000
    return ValidEvent(
        line, transaction_id, subscription, customer, code, timestamp_ms, properties or {}, None
    )


def validate_line(line: bytes, index: int, *, now_ms: int, limits: Limits) -> list[EventError]:
    """Errors of one NDJSON line (empty when it is valid); blank lines are skipped upstream."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return [EventError(index, "event", Reason.INVALID_JSON)]
    outcome = validate_event(event, index, now_ms=now_ms, limits=limits, line=line)
    return outcome if isinstance(outcome, list) else []


# Errors about a CloudEvent name its own attributes.
CLOUDEVENT_FIELD_NAMES = {
    "transaction_id": "id",
    "external_subscription_id": "subject",
    "external_customer_id": "customer",
    "code": "type",
    "timestamp": "time",
    "properties": "data",
}


def cloudevent_to_lago(event: Any) -> Any:
    """Map a CloudEvent (as OpenMeter ingests them) onto Lago's event fields.

    id -> transaction_id, subject -> external_subscription_id, type -> code, time -> timestamp,
    data -> properties; an optional ``customer`` extension attribute -> external_customer_id.
    Anything that is not an object is returned as is, for validation to reject.
    """
    if not isinstance(event, dict):
        return event
    mapped: dict[str, Any] = {
        "transaction_id": event.get("id"),
        "external_subscription_id": event.get("subject"),
        "code": event.get("type"),
    }
    if event.get("time") is not None:
        mapped["timestamp"] = event["time"]
    if event.get("data") is not None:
        mapped["properties"] = event["data"]
    if event.get("customer") is not None:
        mapped["external_customer_id"] = event["customer"]
    return mapped
