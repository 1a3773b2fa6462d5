"""chDB connections behind the server: a pool for plain requests, one per HTTP session.

One chDB connection runs one query at a time, so every request checks a connection out for its
whole duration. Settings and the current database are per connection in chDB, so each connection
tracks what it has applied and converges to what the next request asks for (a SET only when
something differs); nothing one request sets leaks into another.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chdb

from warehouse.embedded.errors import (
    BAD_ARGUMENTS,
    SESSION_IS_LOCKED,
    SESSION_NOT_FOUND,
    UNKNOWN_SETTING,
    WarehouseError,
)
from warehouse.embedded.sql import Kind, Statement


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Outcome:
    """What a statement produced, for the response body and X-ClickHouse-Summary."""

    body: bytes = b""
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    elapsed_s: float = 0.0

    def summary(self) -> str:
        """X-ClickHouse-Summary: JSON with every value a string (of digits: nothing to escape)."""
        return (
            f'{{"read_rows":"{self.read_rows}","read_bytes":"{self.read_bytes}",'
            f'"written_rows":"{self.written_rows}","written_bytes":"{self.written_bytes}",'
            f'"total_rows_to_read":"{self.read_rows}","result_rows":"0",'
            f'"result_bytes":"{len(self.body)}","elapsed_ns":"{int(self.elapsed_s * 1e9)}"}}'
        )


class ViewedTables:
    """Which tables feed materialized views, cached until the next DDL statement.

    chDB's streaming INSERT does not report errors raised inside materialized views (the rows
    are dropped and the INSERT still succeeds), so inserts into such tables are staged. Every
    DDL passes through this server, so clearing the cache on each DDL keeps it exact.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], bool] = {}
        self._lock = threading.Lock()

    def feeds_views(self, conn: Any, database: str, table: str) -> bool:
        key = (database, table)
        with self._lock:
            if key in self._known:
                return self._known[key]
        found = conn.query(
            "SELECT count() FROM system.tables WHERE database = {db:String} "
            "AND name = {table:String} AND notEmpty(dependencies_table)",
            "TabSeparated",
            params={"db": database, "table": table},
        ).bytes()
        with self._lock:
            self._known[key] = found.strip() != b"0"
            return self._known[key]

    def forget(self) -> None:
        with self._lock:
            self._known.clear()


@dataclass
class EngineConnection:
    """One chDB connection and the settings/database state it carries."""

    conn: Any
    readonly: bool
    defaults: dict[str, str]
    viewed_tables: ViewedTables
    database: str = "default"
    applied: dict[str, str | None] = field(default_factory=dict)
    # Values a session's own SET statements established: the baseline to restore to.
    session_values: dict[str, str] = field(default_factory=dict)

    def baseline(self, name: str) -> str:
        return self.session_values.get(name, self.defaults.get(name, ""))

    def prepare(self, database: str | None, settings: dict[str, str]) -> None:
        changes: dict[str, str] = {}
        for name in [n for n in self.applied if n not in settings]:
            changes[name] = self.baseline(name)
        for name, value in settings.items():
            if self.applied.get(name) != value and not (
                name not in self.applied and self.baseline(name) == value
            ):
                changes[name] = value
        if changes:
            assignments = ", ".join(f"{name} = {quote(value)}" for name, value in changes.items())
            try:
                self.conn.query(f"SET {assignments}", "TabSeparated")
            except Exception as exc:
                # The engine may have applied part of it: remember to restore all of them.
                self.applied.update(dict.fromkeys(changes))
                raise WarehouseError.from_engine(exc) from None
            for name, value in changes.items():
                if name in settings:
                    self.applied[name] = value
                else:
                    self.applied.pop(name, None)
        if database and database != self.database:
            self.run_simple(f"USE `{database.replace('`', '')}`")
            self.database = database

    def run_simple(self, sql: str) -> None:
        try:
            self.conn.query(sql, "TabSeparated")
        except Exception as exc:
            raise WarehouseError.from_engine(exc) from None

    def execute(
        self,
        statement: Statement,
        output_format: str,
        params: dict[str, str],
        data: Iterable[bytes] | None,
    ) -> Outcome:
        started = time.perf_counter()
        try:
            if statement.kind is Kind.INSERT and statement.format is not None:
                staged = self._staged_insert(statement, data or (), started)
                return staged or self._stream_insert(statement, data or (), started)
            if statement.kind is Kind.DDL:
                self.viewed_tables.forget()
            result = self.conn.query(statement.sql, output_format, params=params)
        except WarehouseError:
            raise
        except Exception as exc:
            raise WarehouseError.from_engine(exc) from None
        body = result.bytes() if statement.kind is Kind.READ else b""
        outcome = Outcome(
            body=body,
            read_rows=result.rows_read(),
            read_bytes=result.bytes_read(),
            elapsed_s=time.perf_counter() - started,
        )
        if statement.kind is Kind.USE:
            self.database = statement.tokens[1].text.strip('`"')
        elif statement.kind is Kind.SET:
            self._remember_session_values(statement.set_assignments())
        elif statement.kind is Kind.INSERT:
            outcome.written_rows = result.rows_written()
        return outcome

    def _staged_insert(
        self, statement: Statement, data: Iterable[bytes], started: float
    ) -> Outcome | None:
        """Insert into a table that feeds materialized views, so that their errors are reported.

        The data streams into a temporary Memory copy of the table (no views there, so nothing
        is lost silently), then one INSERT ... SELECT moves it: a plain query, which reports
        errors raised in the views. (Inline data in a plain query is cut at ~256 KiB by the
        engine, so the data cannot simply be sent along with the statement.) None when the
        table feeds no views.
        """
        target = statement.insert_target()
        if target is None:
            return None
        database, table, columns = target
        database = database or self.database
        if not self.viewed_tables.feeds_views(self.conn, database, table):
            return None
        stage = f"_mh_stage_{uuid.uuid4().hex}"
        qualified = f"`{database}`.`{table}`"
        self.run_simple(f"CREATE TEMPORARY TABLE {stage} AS {qualified} ENGINE = Memory")
        try:
            staged = Statement(
                f"INSERT INTO {stage} {columns}", Kind.INSERT, [], statement.format, None
            )
            outcome = self._stream_insert(staged, data, started)
            selected = columns.strip("()") if columns else "*"
            self.run_simple(f"INSERT INTO {qualified} {columns} SELECT {selected} FROM {stage}")
        finally:
            self.run_simple(f"DROP TEMPORARY TABLE IF EXISTS {stage}")
        outcome.elapsed_s = time.perf_counter() - started
        return outcome

    def _stream_insert(
        self, statement: Statement, data: Iterable[bytes], started: float
    ) -> Outcome:
        assert statement.format is not None
        inserter = self.conn.send_insert(statement.sql, statement.format)
        try:
            for chunk in data:
                if chunk:
                    inserter.append(chunk)
        except BaseException:
            inserter.cancel()
            raise
        result = inserter.finish()
        return Outcome(
            written_rows=result.rows_written,
            written_bytes=result.bytes_written,
            elapsed_s=time.perf_counter() - started,
        )

    def _remember_session_values(self, names: list[str]) -> None:
        if not names:
            return
        listed = ", ".join(quote(name) for name in names)
        rows = self.conn.query(
            f"SELECT name, value FROM system.settings WHERE name IN ({listed})", "TabSeparated"
        ).bytes()
        for line in rows.decode().splitlines():
            name, _, value = line.partition("\t")
            self.session_values[name] = value
            self.applied.pop(name, None)


@dataclass
class Session:
    connection: EngineConnection
    timeout_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)


class Engine:
    """The chDB engine of one data directory: pooled and per-session connections."""

    def __init__(
        self,
        data_dir: Path,
        *,
        pool_size: int,
        readonly_pool_size: int,
        max_result_bytes: int,
        max_sessions: int = 1000,
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = str(data_dir.resolve() / "chdb")
        self.max_result_bytes = max_result_bytes
        self.max_sessions = max_sessions
        self._pool: queue.Queue[EngineConnection] = queue.Queue()
        self._readonly_pool: queue.Queue[EngineConnection] = queue.Queue()
        self._sessions: dict[tuple[str, str], Session] = {}
        self._sessions_lock = threading.Lock()
        self._all: list[EngineConnection] = []
        self._closed = threading.Event()
        self.viewed_tables = ViewedTables()
        first = self._connect(readonly=False)
        self.defaults = self._settings_snapshot(first.conn)
        first.defaults = self.defaults
        self.known_settings = frozenset(self.defaults)
        self.input_formats, self.output_formats = self._formats(first.conn)
        self._pool.put(first)
        for _ in range(pool_size - 1):
            self._pool.put(self._connect(readonly=False))
        for _ in range(readonly_pool_size):
            self._readonly_pool.put(self._connect(readonly=True))
        self._reaper = threading.Thread(target=self._reap_sessions, daemon=True)
        self._reaper.start()

    # -- connections --------------------------------------------------------------------------
    def _connect(self, *, readonly: bool) -> EngineConnection:
        options = f"max_result_bytes={self.max_result_bytes}&result_overflow_mode=throw"
        if readonly:
            options += "&readonly=1"
        conn = chdb.connect(f"{self.path}?{options}")
        connection = EngineConnection(
            conn, readonly, getattr(self, "defaults", {}), self.viewed_tables
        )
        self._all.append(connection)
        return connection

    @staticmethod
    def _settings_snapshot(conn: Any) -> dict[str, str]:
        text = conn.query("SELECT name, value FROM system.settings", "TabSeparatedRaw").bytes()
        return dict(line.split("\t", 1) for line in text.decode().splitlines() if "\t" in line)

    @staticmethod
    def _formats(conn: Any) -> tuple[frozenset[str], frozenset[str]]:
        rows = conn.query("SELECT name, is_input, is_output FROM system.formats", "TabSeparated")
        inputs, outputs = set(), set()
        for line in rows.bytes().decode().splitlines():
            name, is_input, is_output = line.split("\t")
            if is_input == "1":
                inputs.add(name.lower())
            if is_output == "1":
                outputs.add(name.lower())
        return frozenset(inputs), frozenset(outputs)

    def check_settings(self, settings: dict[str, str]) -> None:
        for name in settings:
            if name not in self.known_settings:
                raise WarehouseError(UNKNOWN_SETTING, f"Unknown setting '{name}'")

    @contextmanager
    def pooled(self, *, readonly: bool) -> Iterator[EngineConnection]:
        pool = self._readonly_pool if readonly else self._pool
        connection = pool.get()
        try:
            yield connection
        finally:
            pool.put(connection)

    @contextmanager
    def session(
        self, user: str, session_id: str, *, readonly: bool, timeout_s: float, check: bool
    ) -> Iterator[EngineConnection]:
        key = (user, session_id)
        with self._sessions_lock:
            session = self._sessions.get(key)
            if session is None:
                if check:
                    raise WarehouseError(SESSION_NOT_FOUND, f"Session {session_id} not found")
                if len(self._sessions) >= self.max_sessions:
                    raise WarehouseError(BAD_ARGUMENTS, "Too many open sessions")
                session = Session(self._connect(readonly=readonly), timeout_s)
                self._sessions[key] = session
            if not session.lock.acquire(blocking=False):
                raise WarehouseError(
                    SESSION_IS_LOCKED, f"Session {session_id} is locked by a concurrent client"
                )
            session.timeout_s = timeout_s
        try:
            yield session.connection
        finally:
            session.last_used = time.monotonic()
            session.lock.release()

    def _reap_sessions(self) -> None:
        while not self._closed.wait(1.0):
            now = time.monotonic()
            with self._sessions_lock:
                for key, session in list(self._sessions.items()):
                    if now - session.last_used > session.timeout_s and session.lock.acquire(
                        blocking=False
                    ):
                        del self._sessions[key]
                        self._close_connection(session.connection)

    def _close_connection(self, connection: EngineConnection) -> None:
        if connection in self._all:
            self._all.remove(connection)
        connection.conn.close()

    def close(self) -> None:
        """Close every connection; the engine flushes and releases the data directory."""
        self._closed.set()
        for connection in list(self._all):
            self._close_connection(connection)
