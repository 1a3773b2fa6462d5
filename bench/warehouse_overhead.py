"""What the HTTP server adds over chDB in-process: bulk inserts, a GROUP BY, small queries.

Run: .venv/bin/python bench/warehouse_overhead.py [--rows 1000000] [--batches 100]
Targets (2 cores): server/in-process <= 1.3 for inserts; <= 2 ms added per small query.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import chdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
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


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def settle(count_merges) -> None:  # type: ignore[no-untyped-def]
    """Wait until no background merge runs, so one phase's merges do not slow the next one."""
    deadline = time.monotonic() + 120
    while int(count_merges()) and time.monotonic() < deadline:
        time.sleep(0.2)


def bench_in_process(path: str, blocks: list[bytes], small: int) -> dict[str, float]:
    conn = chdb.connect(path)
    conn.query("CREATE DATABASE bench ENGINE = Atomic")
    conn.query(TABLE_DDL)

    def insert_all() -> None:
        for block in blocks:
            with conn.send_insert("INSERT INTO bench.narrow", "Native") as inserter:
                inserter.append(block)
                inserter.finish()

    figures = {"insert_s": timed(insert_all)}
    figures["group_by_s"] = min(timed(lambda: conn.query(GROUP_BY, "Native")) for _ in range(5))
    latencies = []
    for _ in range(small):
        started = time.perf_counter()
        conn.query("SELECT 1", "Native").bytes()
        latencies.append(time.perf_counter() - started)
    figures["small_query_ms"] = statistics.median(latencies) * 1000
    settle(lambda: conn.query("SELECT count() FROM system.merges", "CSV").bytes().strip())
    conn.close()
    return figures


def bench_server(url: str, password: str, blocks: list[bytes], small: int) -> dict[str, float]:
    client = get_client(
        Settings(warehouse_url=url, warehouse_password=password), database="", compress=False
    )
    client.command("CREATE DATABASE bench ENGINE = Atomic")
    client.command(TABLE_DDL)

    def insert_all() -> None:
        for block in blocks:
            client.raw_insert("bench.narrow", insert_block=block, fmt="Native")

    figures = {"insert_s": timed(insert_all)}
    figures["group_by_s"] = min(
        timed(lambda: client.raw_query(GROUP_BY, fmt="Native")) for _ in range(5)
    )
    latencies = []
    for _ in range(small):
        started = time.perf_counter()
        client.raw_query("SELECT 1", fmt="Native")
        latencies.append(time.perf_counter() - started)
    figures["small_query_ms"] = statistics.median(latencies) * 1000
    figures["rows"] = client.command("SELECT count() FROM bench.narrow")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--small-queries", type=int, default=500)
    args = parser.parse_args()
    blocks = native_batches(args.rows, args.batches)
    with tempfile.TemporaryDirectory() as tmp:
        local = bench_in_process(f"{tmp}/inprocess", blocks, args.small_queries)
        server, url, password, _ = start_embedded_server(Path(tmp) / "server", Path(tmp) / "log")
        try:
            remote = bench_server(url, password, blocks, args.small_queries)
        finally:
            server.stop()
    if remote["rows"] != args.batches * (args.rows // args.batches):
        raise SystemExit(f"server holds {remote['rows']} rows: inserts were lost")
    mb = sum(map(len, blocks)) / 1e6
    print(f"warehouse overhead: {args.rows:,} rows in {args.batches} batches ({mb:.1f} MB Native)")
    print(f"{'':24}{'in-process':>14}{'server':>14}{'ratio':>10}")
    for key, label in (("insert_s", "insert (s)"), ("group_by_s", "GROUP BY (s)")):
        print(f"{label:24}{local[key]:>14.3f}{remote[key]:>14.3f}{remote[key] / local[key]:>10.2f}")
    print(f"{'rows/s inserted':24}{args.rows / local['insert_s']:>14,.0f}"
          f"{args.rows / remote['insert_s']:>14,.0f}")  # fmt: skip
    added = remote["small_query_ms"] - local["small_query_ms"]
    print(f"{'SELECT 1 p50 (ms)':24}{local['small_query_ms']:>14.3f}"
          f"{remote['small_query_ms']:>14.3f}   added {added:.3f} ms")  # fmt: skip
    print(f"targets: insert ratio <= 1.3 -> {remote['insert_s'] / local['insert_s']:.2f}; "
          f"added per small query <= 2 ms -> {added:.3f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
