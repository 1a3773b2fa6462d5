"""Writes events into the warehouse.

Two paths, one set of rules (ingestion/validation.py and migration 0102 agree, and a property
test checks it):
- single events, CloudEvents and Lago batches are read in Python anyway (to answer each event
  in Lago's shape, or 422 per bad event), so the group-commit flush sends their columns
  straight to ``events`` as one JSONColumns block: one cheap INSERT per flush;
- bulk NDJSON is never split into events in Python: each line travels as one TabSeparated row
  (a per-request prefix, then the JSON text) into ``events_input``, whose views parse and check
  it inside the engine.
These functions are synchronous (clickhouse-connect); the API runs them in threads.
"""

from __future__ import annotations

import math
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from ingestion.timetext import datetime_text
from ingestion.validation import ValidEvent
from warehouse.client import get_client
from warehouse.settings import Settings

EVENTS_TABLE = "events"
EVENT_COLUMNS = (
    "organization_id",
    "external_subscription_id",
    "external_customer_id",
    "transaction_id",
    "code",
    "timestamp",
    "properties",
    "precise_total_amount_cents",
    "ingested_at",
    "raw",
)
# Settings of the group commit's INSERTs into events (see EventWriter.insert_events).
FLUSH_SETTINGS = {"optimize_on_insert": 0}
INPUT_TABLE = "events_input"
INPUT_COLUMNS = (
    "organization_id",
    "request_id",
    "ingested_at",
    "max_timestamp",
    "max_event_bytes",
    "line",
)


@dataclass(frozen=True)
class RequestStamp:
    """What the warehouse needs to know about the request an event came in."""

    organization_id: uuid.UUID
    request_id: uuid.UUID
    ingested_at_us: int
    max_timestamp_ms: int
    max_event_bytes: int

    @property
    def now_ms(self) -> int:
        # Events without a timestamp get the time of receipt, as the engine computes it.
        return self.ingested_at_us // 1000

    @property
    def ingested_at_text(self) -> str:
        moment = datetime.fromtimestamp(self.ingested_at_us // 1_000_000, UTC)
        return f"{moment:%Y-%m-%d %H:%M:%S}.{self.ingested_at_us % 1_000_000:06d}"

    def prefix(self) -> bytes:
        max_ts = datetime.fromtimestamp(self.max_timestamp_ms // 1000, UTC)
        return (
            f"{self.organization_id}\t{self.request_id}\t{self.ingested_at_text}\t"
            f"{max_ts:%Y-%m-%d %H:%M:%S}.{self.max_timestamp_ms % 1000:03d}\t"
            f"{self.max_event_bytes}\t"
        ).encode()


def tsv_escape(text: bytes) -> bytes:
    """Escape JSON text (one line or many) for a TabSeparated field; newlines are kept."""
    if b"\\" in text:
        text = text.replace(b"\\", b"\\\\")
    if b"\t" in text:
        text = text.replace(b"\t", b"\\t")
    if b"\r" in text:
        text = text.replace(b"\r", b"\\r")
    return text


def number_text(value: float) -> str:
    """A float as the engine prints JSON numbers (JavaScript's rules): 1e21, 0.000001, 1e-7."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    exact = Decimal(repr(value))
    if Decimal("1e-6") <= abs(exact) < Decimal("1e21"):
        text = format(exact, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    sign, digits, exponent = exact.normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits))
    point = f"{mantissa[0]}.{mantissa[1:]}" if len(mantissa) > 1 else mantissa
    return f"{'-' if sign else ''}{point}e{exponent + len(mantissa) - 1}"


def property_text(value: Any) -> str:
    """A property value as stored: strings as-is, anything else as its JSON text.

    Written like the engine's JSONExtract(..., 'Map(String, String)') on the bulk path (null is
    empty, numbers in the engine's spelling), so both paths store the same text for an input.
    """
    if isinstance(value, str):
        return value
    if type(value) is int:  # the common case after strings (bool is a subclass: excluded)
        return str(value)
    if value is None:
        return ""
    return json_text(value)


def json_text(value: Any) -> str:
    """Compact JSON with numbers spelled as the engine spells them."""
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, dict):
        members = (f"{string_text(key)}:{json_text(item)}" for key, item in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(json_text(item) for item in value) + "]"
    if isinstance(value, str):
        return string_text(value)
    return orjson.dumps(value).decode()


CONTROL_ESCAPE = re.compile(r"\\(\\|u00[0-9a-f]{2})")


def string_text(value: str) -> str:
    """A JSON string; control characters escaped in upper case (\\u001F), as the engine does."""
    text = orjson.dumps(value).decode()
    if "\\u00" not in text:
        return text
    return CONTROL_ESCAPE.sub(
        lambda m: "\\" + (m[1] if m[1] == "\\" else "u" + m[1][1:].upper()), text
    )


@dataclass(slots=True)
class EventColumns:
    """One request's events as the events table's columns (organization and ingested_at aside).

    Values are what orjson writes and the engine reads into each column: ``timestamp`` holds
    unix seconds (a JSON number reads as such into DateTime64) or a DateTime64 text;
    ``properties`` objects whose values are strings or integers (the engine reads a number into
    String as its digits) or already the stored text; ``raw`` the event itself (an object: the
    engine keeps its JSON text, as orjson wrote it) or that text.
    """

    external_subscription_id: list[str] = field(default_factory=list)
    external_customer_id: list[str] = field(default_factory=list)
    transaction_id: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    timestamp: list[int | str] = field(default_factory=list)
    properties: list[dict[str, Any]] = field(default_factory=list)
    precise_total_amount_cents: list[str | None] = field(default_factory=list)
    raw: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.transaction_id)

    def append(self, event: ValidEvent) -> None:
        """Add an event validated by the full rules, its values as the engine would store them."""
        self.external_subscription_id.append(event.external_subscription_id)
        self.external_customer_id.append(event.external_customer_id or "")
        self.transaction_id.append(event.transaction_id)
        self.code.append(event.code)
        # Spelled out: a whole number of seconds would lose the milliseconds.
        self.timestamp.append(datetime_text(event.timestamp_ms))
        self.properties.append(
            {key: property_text(value) for key, value in event.properties.items()}
        )
        self.precise_total_amount_cents.append(event.precise_total_amount_cents)
        self.raw.append(event.line.decode())

    @classmethod
    def of(cls, events: Iterable[ValidEvent]) -> EventColumns:
        columns = cls()
        for event in events:
            columns.append(event)
        return columns


# The columns a request brings (the flush adds organization_id and ingested_at).
EVENT_COLUMN_FIELDS = tuple(name for name in EVENT_COLUMNS if name in EventColumns.__slots__)


def event_columns(requests: Iterable[tuple[RequestStamp, EventColumns]]) -> bytes:
    """The events of one or more requests as one JSONColumns block for the events table.

    One orjson call over ten column lists costs a third of the Python of one JSON object per
    row, and the engine reads either as fast. The engine's JSON input defaults
    (``input_format_json_read_objects_as_strings``, ``..._read_numbers_as_strings``) turn
    ``raw`` objects and integer property values into their text.
    """
    block: dict[str, list[Any]] = {name: [] for name in EVENT_COLUMNS}
    for stamp, columns in requests:
        count = len(columns)
        block["organization_id"] += [str(stamp.organization_id)] * count
        block["ingested_at"] += [stamp.ingested_at_text] * count
        for name in EVENT_COLUMN_FIELDS:
            block[name] += getattr(columns, name)
    return orjson.dumps(block)


def tsv_rows(stamp: RequestStamp, lines: Iterable[bytes]) -> bytes:
    """TabSeparated rows for events_input, one per JSON line (without raw newlines)."""
    prefix = stamp.prefix()
    return b"".join(prefix + tsv_escape(line) + b"\n" for line in lines)


def tsv_rows_from_chunks(stamp: RequestStamp, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """TabSeparated rows for an NDJSON stream, chunk by chunk, without splitting it into events.

    The prefix goes after every newline except the last one of the stream, so a line split
    across two chunks stays one row.
    """
    prefix = stamp.prefix()
    at_line_start = True
    for chunk in chunks:
        if not chunk:
            continue
        body = tsv_escape(chunk).replace(b"\n", b"\n" + prefix)
        if at_line_start:
            body = prefix + body
        at_line_start = body.endswith(b"\n" + prefix)
        if at_line_start:
            body = body[: -len(prefix)]
        yield body
    if not at_line_start:
        yield b"\n"


class EventWriter:
    """Inserts into events and events_input, reports rejected requests; one lazily built client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Client | None = None
        self._lock = threading.Lock()

    def client(self) -> Client:
        # Built on first use, so the ingest API starts (and answers 503) while the warehouse is
        # down, and recovers by itself when it returns.
        with self._lock:
            if self._client is None:
                self._client = get_client(
                    self.settings,
                    autogenerate_session_id=False,
                    connect_timeout=5,
                    send_receive_timeout=self.settings.ingest_insert_timeout_s,
                    query_retries=0,
                )
            return self._client

    def insert_events(self, columns: bytes) -> None:
        """Insert a finished JSONColumns block into events (the group-commit path).

        Without ``optimize_on_insert`` the engine does not collapse repeated keys within the
        block as it writes the part (a fifth of the INSERT's CPU): the table's merges collapse
        them later, and readers never rely on merges (migration 0101).
        """
        self.client().raw_insert(
            EVENTS_TABLE,
            column_names=EVENT_COLUMNS,
            insert_block=columns,
            fmt="JSONColumns",
            settings=FLUSH_SETTINGS,
        )

    def insert(self, rows: bytes | Iterator[bytes]) -> None:
        """Insert TabSeparated rows into events_input (bytes, or chunks streamed)."""
        self.client().raw_insert(
            INPUT_TABLE,
            column_names=INPUT_COLUMNS,
            insert_block=rows,  # type: ignore[arg-type]  # any iterator streams
            fmt="TabSeparated",
        )

    def rejected_counts(self, request_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Rows the engine refused, per request, among these requests."""
        if not request_ids:
            return {}
        result = self.client().query(
            "SELECT request_id, count() FROM events_rejected "
            "WHERE request_id IN {ids:Array(UUID)} GROUP BY request_id",
            parameters={"ids": request_ids},
        )
        return {row[0]: int(row[1]) for row in result.result_rows}

    def rejected_lines(self, request_id: uuid.UUID, limit: int) -> list[str]:
        result = self.client().query(
            "SELECT raw FROM events_rejected WHERE request_id = {id:UUID} LIMIT {limit:UInt32}",
            parameters={"id": request_id, "limit": limit},
        )
        return [row[0] for row in result.result_rows]

    def delete_request(self, stamp: RequestStamp) -> None:
        """Remove the rows a failed request stored: all or nothing, per request."""
        self.client().command(
            "DELETE FROM events WHERE organization_id = {org:UUID} "
            "AND ingested_at = toDateTime64({at:String}, 6, 'UTC')",
            parameters={"org": stamp.organization_id, "at": stamp.ingested_at_text},
        )

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
