"""Versioned catalog rows over ClickHouse, always scoped to one organization.

Each catalog table is ``ReplacingMergeTree(version, is_deleted)`` keyed by
``(organization_id, id)``: a change writes the whole row again with a higher version, a delete
writes a tombstone (``is_deleted = 1``). Reads use FINAL, so they see the latest version only.
Every method takes the organization id and puts it in the WHERE clause: no query can read or
change another tenant's rows.

Several tables changed by one request (a plan and its charges) are written children first and
parent last, after every validation passed: a request that fails writes nothing, and a crash
between inserts leaves only orphan children that no parent points at yet.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

Row = dict[str, Any]


class VersionClock:
    """Strictly increasing versions (microseconds since the epoch) within this process."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last


class UniquenessLocks:
    """One lock per (organization, resource) around check-then-insert of unique codes.

    This serializes writers inside one API process only. Several API replicas can still race
    between the check and the insert (ClickHouse has no unique constraints): run one writer
    replica, or route writes of an organization to one replica.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[uuid.UUID, str], threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, organization_id: uuid.UUID, resource: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault((organization_id, resource), threading.Lock())
        with lock:
            yield


def utc_now() -> datetime:
    # Millisecond precision, as stored (DateTime64(3)), so a row read back compares equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class CatalogStore:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.clock = VersionClock()
        self.locks = UniquenessLocks()

    def select(
        self,
        table: str,
        organization_id: uuid.UUID,
        where: str = "",
        parameters: Mapping[str, Any] | None = None,
        *,
        order_by: str = "created_at, id",
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Row]:
        """Current rows of ``table`` for the organization; ``where`` adds conditions."""
        sql = f"SELECT * FROM {table} FINAL WHERE {self._scope(where)} ORDER BY {order_by}"
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        result = self.client.query(sql, parameters={**(parameters or {}), "org": organization_id})
        return [with_utc(row) for row in result.named_results()]

    def count(
        self,
        table: str,
        organization_id: uuid.UUID,
        where: str = "",
        parameters: Mapping[str, Any] | None = None,
    ) -> int:
        sql = f"SELECT count() FROM {table} FINAL WHERE {self._scope(where)}"
        result = self.client.query(sql, parameters={**(parameters or {}), "org": organization_id})
        return int(result.result_rows[0][0])

    def first(
        self,
        table: str,
        organization_id: uuid.UUID,
        where: str,
        parameters: Mapping[str, Any] | None = None,
    ) -> Row | None:
        rows = self.select(table, organization_id, where, parameters, limit=1)
        return rows[0] if rows else None

    def write(self, table: str, rows: Sequence[Row], *, changed_by: str) -> None:
        """Write a new version of each row (full rows, all with the same columns)."""
        if not rows:
            return
        now = utc_now()
        by_columns: dict[tuple[str, ...], list[Row]] = {}
        for row in rows:
            # Stamped in place, so what the caller presents is exactly what was stored.
            row.update(updated_at=now, changed_by=changed_by, version=self.clock.next())
            by_columns.setdefault(tuple(row), []).append(row)
        for columns, group in by_columns.items():
            self.client.insert(
                table, [[row[c] for c in columns] for row in group], column_names=list(columns)
            )

    def delete(self, table: str, rows: Sequence[Row], *, changed_by: str) -> None:
        """Write tombstones: the rows as they were, marked deleted."""
        now = utc_now()
        self.write(
            table,
            [{**row, "deleted_at": now, "is_deleted": 1} for row in rows],
            changed_by=changed_by,
        )

    @staticmethod
    def _scope(where: str) -> str:
        scope = "organization_id = {org:UUID} AND is_deleted = 0"
        return f"{scope} AND ({where})" if where else scope


def with_utc(row: Row) -> Row:
    """Timestamps come back naive; every column is UTC, so say so once, here."""
    for key, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            row[key] = value.replace(tzinfo=UTC)
    return row


def new_row(organization_id: uuid.UUID, **columns: Any) -> Row:
    """A fresh catalog row with its bookkeeping columns."""
    now = utc_now()
    return {
        "organization_id": organization_id,
        "id": uuid.uuid4(),
        **columns,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "is_deleted": 0,
    }
