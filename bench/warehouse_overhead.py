"""What the HTTP server adds over chDB in-process: bulk inserts, a GROUP BY, small queries.

Run: .venv/bin/python bench/warehouse_overhead.py [--rows 1000000] [--batches 100]
Targets (2 cores): server/in-process <= 1.3 for inserts; <= 2 ms added per small query.

Besides wall time it prints the CPU time of the threads that carry each insert (Linux): the
in-process caller's thread; the client's thread plus the server's request threads (not the
engine's own pools, which do the same work on both sides). On a busy machine wall time mostly
measures the scheduler; this CPU time barely moves with the load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.merges import wait_until_no_merge_runs  # noqa: E402
from tests.conftest import start_embedded_server  # noqa: E402
from warehouse.client import get_client  # noqa: E402
from warehouse.settings import Settings  # noqa: E402

TABLE_DDL = (
    "CREATE TABLE bench.narrow (id UInt64, customer UInt32, value Float64, at DateTime) "
    "ENGINE = MergeTree ORDER BY (customer, id)"
)
GROUP_BY = "SELECT customer % 100 AS c, count(), sum(value) FROM bench.narrow GROUP BY c ORDER BY c"


def native_batches(rows: int, batches: int) -> list[bytes]:
    """Pre-encoded Native blocks, so both paths insert exactly the same bytes."""
    scratch = chdb.connect(":memory:")
    size = rows // batches
    blocks = [
        scratch.query(
            f"SELECT number + {b * size} AS id, toUInt32(number % 10000) AS customer, "
            f"number / 7 AS value, toDateTime('2024-01-01') + number AS at "
            f"FROM numbers({size})",
            "Native",
        ).bytes()
        for b in range(batches)
    ]
    scratch.close()
    return blocks


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def request_threads_cpu_s(pid: int) -> float:
    """CPU time of a process's Python threads (named as the process; the engine names its own)."""
    task_dir = Path(f"/proc/{pid}/task")
    name = (task_dir.parent / "comm").read_text()
    total_ns = 0
    for task in task_dir.iterdir():
        try:
            if (task / "comm").read_text() == name:
                total_ns += int((task / "schedstat").read_text().split()[0])
        except OSError:  # the thread ended meanwhile
            continue
    return total_ns / 1e9


def small_query_ms(run_select_1: Callable[[], object], small: int) -> float:
    latencies = []
    for _ in range(small):
        started = time.perf_counter()
        run_select_1()
        latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1000


class InProcess:
    """chDB as a library in this process: the baseline."""

    def __init__(self, path: str) -> None:
        self.conn = chdb.connect(path)
        self.conn.query("CREATE DATABASE bench ENGINE = Atomic")
        self.conn.query(TABLE_DDL)

    def cpu_s(self) -> float:
        return time.thread_time()

    def insert(self, blocks: list[bytes]) -> None:
        for block in blocks:
            with self.conn.send_insert("INSERT INTO bench.narrow", "Native") as inserter:
                inserter.append(block)
                inserter.finish()

    def group_by(self) -> None:
        self.conn.query(GROUP_BY, "Native")

    def select_1(self) -> None:
        self.conn.query("SELECT 1", "Native").bytes()

    def merges(self) -> str:
        return str(
            self.conn.query("SELECT count() FROM system.merges", "CSV").bytes().strip(), "ascii"
        )

    def close(self) -> None:
        self.conn.close()


class Server:
    """The same engine behind the embedded server's HTTP interface, through clickhouse-connect."""

    def __init__(self, url: str, password: str, pid: int) -> None:
        self.pid = pid
        settings = Settings(warehouse_url=url, warehouse_password=password)
        self.client = get_client(settings, database="", compress=False)
        self.client.command("CREATE DATABASE bench ENGINE = Atomic")
        self.client.command(TABLE_DDL)

    def cpu_s(self) -> float:
        return time.thread_time() + self.server_cpu_s()

    def server_cpu_s(self) -> float:
        return request_threads_cpu_s(self.pid)

    def insert(self, blocks: list[bytes]) -> None:
        for block in blocks:
            self.client.raw_insert("bench.narrow", insert_block=block, fmt="Native")

    def group_by(self) -> None:
        self.client.raw_query(GROUP_BY, fmt="Native")

    def select_1(self) -> None:
        self.client.raw_query("SELECT 1", fmt="Native")

    def merges(self) -> str:
        return str(self.client.command("SELECT count() FROM system.merges"))

    def rows(self) -> int:
        return int(str(self.client.command("SELECT count() FROM bench.narrow")))


def compare(
    local: InProcess, remote: Server, blocks: list[bytes], rounds: int, small: int
) -> dict[str, Any]:
    """Insert the blocks round by round, alternating which side goes first.

    Both engines share the machine's cores, so each timed round starts with neither side merging,
    and alternating the order spreads any other load evenly over the two sides.
    """
    per_round = max(len(blocks) // rounds, 1)
    totals = {"local": 0.0, "remote": 0.0}
    cpu = {"local": 0.0, "remote": 0.0, "server": 0.0}
    round_ratios = []
    for number, first in enumerate(range(0, len(blocks), per_round)):
        chunk = blocks[first : first + per_round]
        sides: list[tuple[str, InProcess | Server]] = [("local", local), ("remote", remote)]
        timings = {}
        for name, side in sides if number % 2 == 0 else reversed(sides):
            wait_until_no_merge_runs(local.merges)
            wait_until_no_merge_runs(remote.merges)
            cpu_before, server_before = side.cpu_s(), remote.server_cpu_s()
            timings[name] = timed(lambda: side.insert(chunk))  # noqa: B023
            cpu[name] += side.cpu_s() - cpu_before
            if side is remote:
                cpu["server"] += remote.server_cpu_s() - server_before
        totals["local"] += timings["local"]
        totals["remote"] += timings["remote"]
        round_ratios.append(timings["remote"] / timings["local"])
    wait_until_no_merge_runs(local.merges)
    wait_until_no_merge_runs(remote.merges)
    return {
        "insert_s": (totals["local"], totals["remote"]),
        "insert_cpu_s": (cpu["local"], cpu["remote"]),
        "server_cpu_s": cpu["server"],
        "round_ratio_median": statistics.median(round_ratios),
        "group_by_s": (
            min(timed(local.group_by) for _ in range(5)),
            min(timed(remote.group_by) for _ in range(5)),
        ),
        "small_query_ms": (
            small_query_ms(local.select_1, small),
            small_query_ms(remote.select_1, small),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10, help="alternating insert rounds")
    parser.add_argument("--small-queries", type=int, default=500)
    args = parser.parse_args()
    blocks = native_batches(args.rows, args.batches)
    with tempfile.TemporaryDirectory() as tmp:
        server, url, password, _ = start_embedded_server(Path(tmp) / "server", Path(tmp) / "log")
        assert server.process is not None
        local = InProcess(f"{tmp}/inprocess")
        try:
            remote = Server(url, password, server.process.pid)
            figures = compare(local, remote, blocks, args.rounds, args.small_queries)
            stored = remote.rows()
        finally:
            local.close()
            server.stop()
    if stored != args.batches * (args.rows // args.batches):
        raise SystemExit(f"server holds {stored} rows: inserts were lost")
    report(args, blocks, figures)


def report(args: argparse.Namespace, blocks: list[bytes], figures: dict[str, Any]) -> None:
    mb = sum(map(len, blocks)) / 1e6
    print(f"warehouse overhead: {args.rows:,} rows in {args.batches} batches ({mb:.1f} MB Native), "
          f"{args.rounds} alternating rounds")  # fmt: skip
    print(f"{'':24}{'in-process':>14}{'server':>14}{'ratio':>10}")
    for key, label in (("insert_s", "insert (s)"), ("group_by_s", "GROUP BY (s)")):
        local, remote = figures[key]
        print(f"{label:24}{local:>14.3f}{remote:>14.3f}{remote / local:>10.2f}")
    local_insert, remote_insert = figures["insert_s"]
    print(f"{'rows/s inserted':24}{args.rows / local_insert:>14,.0f}"
          f"{args.rows / remote_insert:>14,.0f}")  # fmt: skip
    local_cpu, remote_cpu = (1000 * s / args.batches for s in figures["insert_cpu_s"])
    print(f"{'insert CPU/batch (ms)':24}{local_cpu:>14.3f}{remote_cpu:>14.3f}"
          f"{remote_cpu / local_cpu:>10.2f}   added {remote_cpu - local_cpu:.3f} ms")  # fmt: skip
    server_cpu = 1000 * figures["server_cpu_s"] / args.batches
    client_cpu = remote_cpu - server_cpu
    print(f"{'  client + server (ms)':24}{'':14}{client_cpu:>6.3f} +{server_cpu:>6.3f}")
    local_ms, remote_ms = figures["small_query_ms"]
    added = remote_ms - local_ms
    print(f"{'SELECT 1 p50 (ms)':24}{local_ms:>14.3f}{remote_ms:>14.3f}   added {added:.3f} ms")
    print(f"targets: insert ratio <= 1.3 -> {remote_insert / local_insert:.2f} "
          f"(median per round {figures['round_ratio_median']:.2f}); "
          f"added per small query <= 2 ms -> {added:.3f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
