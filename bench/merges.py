"""The warehouse's background merges after a bulk load: waiting for them, and what they leave.

A benchmark that generates months of events in a few INSERT ... SELECT statements and builds at
once measures its builds on parts the engine has not merged yet, and beside those merges. A
warehouse that received the same events over months holds them as its background merges leave
them. `settle_merges` waits for those merges (the engine's own: nothing is forced) and reports the
wait and the warehouse's CPU seconds meanwhile, the load's cost, before the builds are timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.process import cpu_seconds

# The engine looks for a merge to start when a part is added or a merge ends, else every 5 s
# (merge_selecting_sleep_ms), backing off towards 60 s while it finds none. Once no merge runs
# and no part has changed for 30 s, several such looks found nothing: what remains merges only
# as the parts age (the merge selector lowers its size ratio over hours to days).
QUIET_S = 30.0
# Bounded, so a benchmark cannot hang on a merge that never ends.
TIMEOUT_S = 1800.0
POLL_S = 1.0


def wait_until_no_merge_runs(count_merges: Callable[[], object], timeout_s: float = 120) -> None:
    """Wait until no background merge runs (bounded), e.g. so that one side of a comparison does
    not pay for the other side's merges."""
    deadline = time.monotonic() + timeout_s
    while int(str(count_merges())) and time.monotonic() < deadline:
        time.sleep(0.05)


@dataclass
class Layout:
    """Active parts of a table per partition: (parts, rows of the largest part)."""

    partitions: dict[str, tuple[int, int]]

    def __str__(self) -> str:
        return ", ".join(
            f"{partition}: {parts} parts (largest {largest:,} rows)"
            for partition, (parts, largest) in sorted(self.partitions.items())
        )


def layout(client: Any, database: str, table: str) -> Layout:
    rows = client.query(
        "SELECT partition, count(), max(rows) FROM system.parts WHERE active "
        "AND database = {database:String} AND table = {table:String} GROUP BY partition",
        parameters={"database": database, "table": table},
    ).result_rows
    return Layout({partition: (parts, largest) for partition, parts, largest in rows})


@dataclass
class Settled:
    wait_s: float
    warehouse_cpu_s: float | None  # None: the warehouse's process is not known
    merges: int  # merges seen running while waiting
    timed_out: bool

    def __str__(self) -> str:
        cpu = "?" if self.warehouse_cpu_s is None else f"{self.warehouse_cpu_s:.1f}"
        ending = f"still merging after {self.wait_s:.0f} s" if self.timed_out else "settled"
        return (
            f"{self.wait_s:.1f} s wall, {cpu} warehouse CPU-s, {self.merges} merges seen "
            f"({ending}; quiet for {QUIET_S:.0f} s counted in)"
        )


def settle_merges(
    client: Any, warehouse_pid: int | None, quiet_s: float = QUIET_S, timeout_s: float = TIMEOUT_S
) -> Settled:
    """Wait until the warehouse's background merges have settled: no merge runs and no active
    part of any table has changed for ``quiet_s``, or ``timeout_s`` passed."""
    started = time.monotonic()
    cpu_before = cpu_seconds(warehouse_pid)
    seen: set[str] = set()
    parts, quiet_since = None, started
    while True:
        merging = [
            row[0] for row in client.query("SELECT result_part_name FROM system.merges").result_rows
        ]
        seen.update(merging)
        current = client.query(
            "SELECT groupArraySorted(1000000)(concat(database, '.', table, '.', name)) "
            "FROM system.parts WHERE active AND database != 'system'"
        ).result_rows[0][0]
        now = time.monotonic()
        if merging or current != parts:
            parts, quiet_since = current, now
        if now - quiet_since >= quiet_s or now - started >= timeout_s:
            break
        time.sleep(POLL_S)
    return Settled(
        now - started,
        None if warehouse_pid is None else cpu_seconds(warehouse_pid) - cpu_before,
        len(seen),
        timed_out=now - quiet_since < quiet_s,
    )


def settle_and_report(client: Any, warehouse_pid: int | None, database: str, after: str) -> None:
    """`settle_merges`, printing its cost and the events' parts before and after it."""
    before = layout(client, database, "events")
    settled = settle_merges(client, warehouse_pid)
    print(f"background merges after {after}: {settled}")
    print(f"  events parts before: {before}")
    print(f"  events parts after:  {layout(client, database, 'events')}")
