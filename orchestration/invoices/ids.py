"""Deterministic ids and versions of invoicing records: a re-run produces the same keys."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from uuid import UUID, uuid5

# The namespace of every invoicing record id (UUIDv5 over the record's natural key).
INVOICING_NAMESPACE = UUID("6f1c9d0e-58a3-4c57-9a61-0b8f6c3e2d41")

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
