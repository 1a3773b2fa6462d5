"""Deterministic ids and versions of invoicing records: a re-run produces the same keys."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from uuid import UUID, uuid5

from clickhouse_connect.driver.client import Client

# The namespace of every invoicing record id (UUIDv5 over the record's natural key).
INVOICING_NAMESPACE = UUID("6f1c9d0e-58a3-4c57-9a61-0b8f6c3e2d41")

# Ids inlined in one query: well below the server's max_query_size.
IDS_PER_QUERY = 2000

# invoices.version = rank * RANK_STEP + a time part. A higher rank always wins:
#   1 draft (the latest refresh wins), 2 finalization (the FIRST finalization wins: a concurrent
#   run that finalizes the same invoice later cannot replace what was issued), 3 changes of a
#   finalized invoice (payment, provider sync: the latest wins), 4 voided (the latest wins).
STATUS_RANK = {"draft": 1, "finalized": 2, "voided": 4}
UPDATED_RANK = 3
RANK_STEP = 10**17  # microseconds since epoch stay below this until the year 5138


def record_id(kind: str, *natural_key: object) -> UUID:
    return uuid5(INVOICING_NAMESPACE, "|".join([kind, *(str(part) for part in natural_key)]))


def content_version(parts: Iterable[object]) -> int:
    """A UInt64 that changes whenever the content changes and only then."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def now_micros() -> int:
    return time.time_ns() // 1000


def invoice_version(status: str, micros: int) -> int:
    rank = STATUS_RANK[status]
    if status == "finalized":
        return rank * RANK_STEP + (RANK_STEP - 1 - micros)
    return rank * RANK_STEP + micros


def stored_ids(client: Client, table: str, ids: Sequence[UUID], condition: str = "1") -> set[UUID]:
    """Which of ``ids`` are ids of rows of ``table`` (a table, or one with FINAL) that meet
    ``condition``."""
    stored: set[UUID] = set()
    for start in range(0, len(ids), IDS_PER_QUERY):
        rows = client.query(
            f"SELECT DISTINCT id FROM {table} WHERE ({condition}) AND id IN %(ids)s",
            parameters={"ids": [str(i) for i in ids[start : start + IDS_PER_QUERY]]},
        ).result_rows
        stored.update(row[0] for row in rows)
    return stored
