"""Ingest benchmark: the engine's ceiling, then bulk, batch and single events through the API.

Run: .venv/bin/python bench/ingest.py [--events 300000] [--batch-seconds 15]
     [--batch-clients 8,32] [--single-seconds 15] [--single-clients 64] [--workers N]
     [--phases ceiling,bulk,batch,single,http]

(a) ceiling: chDB in-process INSERTs the NDJSON file's rows through the same write path as the
    API (events_input -> views -> events), and, for reference, the file as typed JSONEachRow
    into a plain table; (b) bulk NDJSON through the API; (c) Lago batches of 1,000 events,
    from 8 concurrent producers (all their waiting requests fit in one flush, so the ingest
    service and the warehouse take turns) and from 32 (a producer fleet larger than a flush:
    the next group parses while the warehouse commits the last); (d) single-event POSTs from
    64 concurrent keep-alive clients. Prints events/s, p50/p99 request latency, the ingest
    processes' peak RSS and the ratios to (a).
(c) and (d) are driven by wrk (installed with apt-get when missing) running
bench/ingest_wrk.lua, so the load generator costs little of the CPU the server needs; every
event gets its own transaction_id, and afterwards the warehouse must hold every acknowledged
event exactly once (counted under the phase's prefix), or the benchmark fails.
Targets (2 cores): bulk >= 70% of the ceiling; batch >= 150k events/s; single >= 15k events/s
with p99 <= 25 ms; ingest RSS <= 400 MB.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chdb
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from clickhouse_connect.driver.client import Client  # noqa: E402

from bench.process import cpu_seconds  # noqa: E402
from ingestion.writer import INPUT_TABLE, RequestStamp, tsv_rows_from_chunks  # noqa: E402
from meterhouse.orgs import create_organization  # noqa: E402
from tests.conftest import start_embedded_server  # noqa: E402
from tests.support.processes import ServiceProcess, free_port, meterhouse_command  # noqa: E402
from tests.support.system_packages import ensure_command  # noqa: E402
from warehouse.client import get_client  # noqa: E402
from warehouse.migrate import discover, migrate  # noqa: E402
from warehouse.settings import Settings  # noqa: E402

DATABASE = "meterhouse"
NARROW_SCHEMA = (
    "transaction_id String, external_subscription_id String, code String, "
    "timestamp DateTime64(3, 'UTC'), properties Map(String, String)"
)
CHUNK_BYTES = 1 << 20
WRK_SCRIPT = Path(__file__).with_name("ingest_wrk.lua")


def write_ndjson(path: Path, events: int, prefix: str) -> int:
    """Narrow Lago events, one per line; returns the file size."""
    with path.open("wb") as out:
        for i in range(events):
            out.write(
                orjson.dumps(
                    {
                        "transaction_id": f"{prefix}-{i}",
                        "external_subscription_id": f"sub-{i % 1000}",
                        "code": ("api_calls", "storage", "seats")[i % 3],
                        "timestamp": 1_700_000_000 + i,
                        "properties": {"region": "eu", "value": i % 97},
                    }
                )
                + b"\n"
            )
    return path.stat().st_size


def engine_ceiling(ndjson: Path, events: int) -> dict[str, float]:
    """chDB in-process, no HTTP, no Python per event: the most the engine does on this box.

    The engine receives exactly the rows the API sends for this file (prepared before the
    clock starts), streamed as the server streams them; for reference, the same file as typed
    JSONEachRow into a plain table.
    """
    data = ndjson.read_bytes()
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
    now_us = time.time_ns() // 1000
    stamp = RequestStamp(uuid.uuid4(), uuid.uuid4(), now_us, now_us // 1000 + 86_400_000, 65_536)
    rows = list(tsv_rows_from_chunks(stamp, chunks))
    with tempfile.TemporaryDirectory(prefix="mh-bench-chdb-") as scratch:
        conn = chdb.connect(scratch)
        conn.query(f"CREATE DATABASE {DATABASE} ENGINE = Atomic")
        for migration in discover():
            for statement in migration.statements(DATABASE):
                conn.query(statement)
        conn.query(
            f"CREATE TABLE {DATABASE}.narrow ({NARROW_SCHEMA}) ENGINE = MergeTree "
            "ORDER BY (external_subscription_id, code, timestamp)"
        )
        same_path = timed_insert(
            conn, f"INSERT INTO {DATABASE}.{INPUT_TABLE}", "TabSeparated", rows
        )
        stored = int(conn.query(f"SELECT count() FROM {DATABASE}.events", "CSV").bytes())
        narrow = timed_insert(conn, f"INSERT INTO {DATABASE}.narrow", "JSONEachRow", chunks)
        conn.close()
    assert stored == events, f"ceiling stored {stored} of {events} events"
    return {
        "same_path": events / same_path[0],
        "same_path_cpu_us": same_path[1] / events * 1e6,
        "narrow_jsoneachrow": events / narrow[0],
    }


def timed_insert(conn: Any, sql: str, fmt: str, chunks: list[bytes]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, chDB's threads included)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    inserter = conn.send_insert(sql, fmt)
    for chunk in chunks:
        inserter.append(chunk)
    inserter.finish()
    return time.perf_counter() - started, time.process_time() - cpu_started


class ProcessTree:
    """A process and its descendants (the uvicorn workers), read from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def pids(self) -> list[int]:
        pids, frontier = [self.pid], [self.pid]
        while frontier:
            parent = frontier.pop()
            try:
                children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            except OSError:
                continue
            pids += [int(c) for c in children]
            frontier += [int(c) for c in children]
        return pids

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            total += sum(
                int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:")
            )
        return total

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                total += cpu_seconds(pid)
            except OSError:  # a worker that exited meanwhile
                continue
        return total


class RssSampler:
    """Peak resident memory of a process tree, sampled every 50 ms."""

    def __init__(self, tree: ProcessTree) -> None:
        self.tree = tree
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_bytes = max(self.peak_bytes, self.tree.rss_bytes())


class CpuMeter:
    """CPU time the ingest service and the warehouse spend per event in one phase, and how the
    ingest service's event loop spent the phase."""

    def __init__(self, ingest: ProcessTree, warehouse: ProcessTree) -> None:
        self.trees = (ingest, warehouse)
        self.start = (0.0, 0.0)
        self.loop_start = (0.0, 0.0, 0.0)
        self.last_us_per_event = 0.0

    def begin(self) -> None:
        self.start = (self.trees[0].cpu_seconds(), self.trees[1].cpu_seconds())
        self.loop_start = self.event_loop_times()

    def event_loop_times(self) -> tuple[float, float, float]:
        """(wall, on a CPU, waiting for a CPU) seconds of the ingest process's main thread, the
        event loop of a single worker (/proc/PID/task/PID/schedstat)."""
        pid = self.trees[0].pid
        running, waiting = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[:2]
        return time.perf_counter(), int(running) / 1e9, int(waiting) / 1e9

    def report(self, events: int) -> str:
        ingest, warehouse = (
            t.cpu_seconds() - s for t, s in zip(self.trees, self.start, strict=True)
        )
        self.last_us_per_event = (ingest + warehouse) / events * 1e6
        wall, running, waiting = (
            b - a for a, b in zip(self.loop_start, self.event_loop_times(), strict=True)
        )
        loop = ""
        if len(self.trees[0].pids()) == 1:  # one worker: the event loop is the main thread
            idle = max(wall - running - waiting, 0.0)
            loop = (
                f"; event loop running {running / wall:.0%}, waiting for a CPU "
                f"{waiting / wall:.0%}, idle {idle / wall:.0%}"
            )
        return (
            f"CPU per event: ingest {ingest / events * 1e6:.1f} us, "
            f"warehouse {warehouse / events * 1e6:.1f} us{loop}"
        )


@dataclass
class WrkRun:
    """What wrk measured in one phase (latencies in ms), and what it cost."""

    requests: int
    failed: int  # answered non-2xx, or lost to a socket error or timeout
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_s: float  # of wrk itself: it shares the machine with the server


def run_wrk(
    url: str, api_key: str, prefix: str, mode: str, per_request: int, clients: int,
    seconds: int,
) -> WrkRun:  # fmt: skip
    """Run wrk with bench/ingest_wrk.lua; every event carries a transaction_id under prefix."""
    wrk = ensure_command("wrk", "wrk")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [
            wrk, "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s", "--latency",
            "-s", str(WRK_SCRIPT), url, "--", api_key, prefix, mode, str(per_request),
        ],
        capture_output=True, text=True, check=True, timeout=seconds + 120,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(ln for ln in completed.stdout.splitlines() if ln.startswith("WRK_RESULT "))
    result = orjson.loads(line.removeprefix("WRK_RESULT "))
    lost = sum(result[key] for key in ("read_errors", "write_errors", "timeouts"))
    return WrkRun(
        requests=result["requests"] - result["non_2xx"],
        failed=result["non_2xx"] + result["connect_errors"] + lost,
        seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )


def verify_stored(
    client: Client, organization_id: uuid.UUID, prefix: str, acknowledged: int, in_flight: int
) -> str:
    """Every acknowledged event is stored exactly once; fail the benchmark otherwise.

    wrk stops waiting at its deadline, so up to ``in_flight`` more events (requests it
    abandoned) may have been committed after it stopped counting.
    """
    rows, keys = client.query(
        "SELECT count(), uniqExact(external_subscription_id, transaction_id) FROM events "
        "WHERE organization_id = {org:UUID} AND startsWith(transaction_id, {prefix:String})",
        parameters={"org": organization_id, "prefix": f"{prefix}-"},
    ).result_rows[0]
    if rows != keys:
        raise SystemExit(f"{prefix}: {rows - keys} events stored more than once")
    if not acknowledged <= keys <= acknowledged + in_flight:
        raise SystemExit(f"{prefix}: {acknowledged} events acknowledged but {keys} stored")
    return f"stored exactly once: {acknowledged:,} acknowledged (+{keys - acknowledged} in flight)"


def flush_totals(url: str, workers: int) -> tuple[float, float, float]:
    """(flushes, events flushed, seconds flushing) summed over every worker.

    /metrics reaches one worker per request: ask until each worker has answered.
    """
    seen: dict[str, tuple[float, float, float]] = {}
    for _ in range(200):
        if len(seen) == workers:
            break
        figures: dict[str, float] = {}
        pid = ""
        for line in httpx.get(f"{url}/metrics").text.splitlines():
            if line.startswith(
                ("meterhouse_ingest_flush_events_", "meterhouse_ingest_flush_seconds_")
            ):
                name, value = line.rsplit(" ", 1)
                figures[name.split("{")[0]] = float(value)
                pid = name.split('pid="')[1].split('"')[0]
        seen[pid] = (
            figures.get("meterhouse_ingest_flush_events_count", 0.0),
            figures.get("meterhouse_ingest_flush_events_sum", 0.0),
            figures.get("meterhouse_ingest_flush_seconds_sum", 0.0),
        )
    flushes, events, seconds = (sum(values) for values in zip(*seen.values(), strict=True))
    return flushes, events, seconds


def flush_report(before: tuple[float, float, float], after: tuple[float, float, float]) -> str:
    flushes, events, seconds = (b - a for a, b in zip(before, after, strict=True))
    if not flushes:
        return "no flush seen"
    return (
        f"{flushes:,.0f} flushes of {events / flushes:,.0f} events on average, "
        f"{seconds / flushes * 1000:.1f} ms each"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000, help="events of the NDJSON file")
    parser.add_argument("--batch-seconds", type=int, default=15, help="length of phase (c)")
    parser.add_argument("--batch-size", type=int, default=1_000, help="events per batch")
    parser.add_argument(
        "--batch-clients",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[8, 32],
        help="concurrent batch producers, one run of phase (c) per comma-separated figure",
    )
    parser.add_argument("--single-seconds", type=int, default=15, help="length of phase (d)")
    parser.add_argument("--single-clients", type=int, default=64)
    parser.add_argument(
        "--workers", type=int, default=None, help="ingest worker processes (default: settings)"
    )
    parser.add_argument(
        "--flush-concurrency", type=int, default=None, help="INSERTs in flight per worker"
    )
    parser.add_argument(
        "--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}"
    )
    args = parser.parse_args()
    args.phases = set(args.phases.split(","))
    if unknown := args.phases - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    root = Path(tempfile.mkdtemp(prefix="mh-bench-ingest-"))
    try:
        run_phases(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_phases(args: argparse.Namespace, root: Path) -> None:
    ndjson = root / "events.ndjson"
    size = write_ndjson(ndjson, args.events, "bulk")
    print(f"NDJSON file: {args.events} events, {size / 1e6:.1f} MB")

    ceiling = {"same_path": float("nan"), "same_path_cpu_us": float("nan")}
    if "ceiling" in args.phases:
        ceiling = engine_ceiling(ndjson, args.events)
        print(
            f"(a) engine ceiling, same write path: {ceiling['same_path']:,.0f} events/s, "
            f"CPU per event {ceiling['same_path_cpu_us']:.1f} us (typed JSONEachRow into a "
            f"plain table: {ceiling['narrow_jsoneachrow']:,.0f} events/s)"
        )
    if "http" in args.phases:
        http_ceiling(args)
    if not args.phases & {"bulk", "batch", "single"}:
        return

    server, wh_url, admin_password, _ = start_embedded_server(root / "data", root / "wh.log")
    ingest: ServiceProcess | None = None
    try:
        settings = Settings(
            warehouse_url=wh_url,
            warehouse_user="admin",
            warehouse_password=admin_password,
            warehouse_database=DATABASE,
        )
        migrate(get_client(settings, database=""), DATABASE)
        organization, api_key = create_organization(
            get_client(settings), f"bench-{uuid.uuid4().hex[:6]}"
        )
        args.workers = args.workers or settings.ingest_workers
        port = free_port()
        env = {
            "WAREHOUSE_URL": wh_url,
            "MH_WAREHOUSE_USER": "admin",
            "MH_WAREHOUSE_PASSWORD": admin_password,
            "MH_WAREHOUSE_DATABASE": DATABASE,
        }
        if args.flush_concurrency:
            env["MH_INGEST_FLUSH_CONCURRENCY"] = str(args.flush_concurrency)
        ingest = ServiceProcess(
            meterhouse_command(
                "ingest", "serve", "--port", str(port), "--workers", str(args.workers)
            ),
            f"http://127.0.0.1:{port}/health",
            env=env,
            log_path=root / "ingest.log",
            startup_timeout=180,  # the machine may be busy: the phases wait, the start may too
        ).start()
        url = f"http://127.0.0.1:{port}"
        assert ingest.process is not None and server.process is not None
        cpu = CpuMeter(ProcessTree(ingest.process.pid), ProcessTree(server.process.pid))
        with RssSampler(ProcessTree(ingest.process.pid)) as rss:
            phases = Phases(args, url, api_key, get_client(settings), organization.organization_id)
            phases.report(ndjson, ceiling, cpu)
        print(f"ingest peak RSS (all workers): {rss.peak_bytes / 2**20:,.0f} MB")
    finally:
        if ingest is not None:
            ingest.stop()
        server.stop()


PHASES = ("ceiling", "bulk", "batch", "single", "http")


async def fixed_answer_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an ASGI app can do for a POST: read the body, answer a fixed 200."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"event":{}}'})


def http_ceiling(args: argparse.Namespace) -> None:
    """(e): fixed_answer_app served as the ingest service is (uvicorn, httptools, uvloop, one
    process per worker, no access log) under the single-event load of (d)."""
    port = free_port()
    serve = (
        "import sys, uvicorn; sys.path.insert(0, sys.argv[1]); "
        "uvicorn.run('ingest:fixed_answer_app', host='127.0.0.1', port=int(sys.argv[2]), "
        "workers=int(sys.argv[3]), http='httptools', loop='uvloop', access_log=False, "
        "log_level='warning')"
    )
    workers = args.workers or 1
    server = subprocess.Popen(
        [sys.executable, "-c", serve, str(Path(__file__).parent), str(port), str(workers)]
    )
    try:
        for _ in range(600):
            try:
                httpx.post(f"http://127.0.0.1:{port}/", content=b"{}")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        tree = ProcessTree(server.pid)
        cpu_before = tree.cpu_seconds()
        run = run_wrk(f"http://127.0.0.1:{port}", "key", "http", "single", 1,
                      args.single_clients, args.single_seconds)  # fmt: skip
        cpu_us = (tree.cpu_seconds() - cpu_before) / max(run.requests, 1) * 1e6
        print(
            f"(e) HTTP ceiling, fixed 200 from a trivial ASGI app ({workers} worker(s), "
            f"{args.single_clients} keep-alive clients): {run.requests / run.seconds:,.0f} "
            f"requests/s, p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms; server CPU "
            f"{cpu_us:.1f} us, wrk {run.cpu_s / max(run.requests, 1) * 1e6:.1f} us per request"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def warm_up(url: str, headers: dict[str, str]) -> None:
    """One small request per path first: the phases measure the steady state, not first use."""
    for worker in range(4):  # reaches both workers of the default, whichever answers
        event = {"transaction_id": f"warm-{worker}", "external_subscription_id": "warm",
                 "code": "warm"}  # fmt: skip
        httpx.post(f"{url}/api/v1/events/bulk", content=orjson.dumps(event), headers=headers)
        httpx.post(f"{url}/api/v1/events", json={"event": event}, headers=headers)
        httpx.post(f"{url}/api/v1/events/batch", json={"events": [event]}, headers=headers)


class Phases:
    """The phases through the API, against one running ingest service."""

    def __init__(
        self, args: argparse.Namespace, url: str, api_key: str, warehouse: Client,
        organization_id: uuid.UUID,
    ) -> None:  # fmt: skip
        self.args = args
        self.url = url
        self.api_key = api_key
        self.warehouse = warehouse
        self.organization_id = organization_id

    def report(self, ndjson: Path, ceilings: dict[str, float], cpu: CpuMeter) -> None:
        args, ceiling = self.args, ceilings["same_path"]
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/x-ndjson",
        }
        warm_up(self.url, headers)
        if "bulk" in args.phases:
            self.bulk_phase(ndjson, headers, ceilings, cpu)
        if "batch" in args.phases:
            for clients in args.batch_clients:
                label = f"(c) batch JSON ({args.batch_size}/request, {clients} clients)"
                self.wrk_phase(label, "batch", args.batch_size, clients, args.batch_seconds,
                               ceiling, cpu)  # fmt: skip
        if "single" in args.phases:
            label = f"(d) single events ({args.single_clients} keep-alive clients)"
            self.wrk_phase(label, "single", 1, args.single_clients, args.single_seconds,
                           ceiling, cpu)  # fmt: skip

    def bulk_phase(
        self, ndjson: Path, headers: dict[str, str], ceilings: dict[str, float], cpu: CpuMeter
    ) -> None:
        events = self.args.events
        body = ndjson.read_bytes()
        cpu.begin()
        started = time.perf_counter()
        response = httpx.post(
            f"{self.url}/api/v1/events/bulk", content=body, headers=headers, timeout=600
        )
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        bulk_rate = events / elapsed
        print(
            f"(b) bulk NDJSON: {bulk_rate:,.0f} events/s ({elapsed:.2f} s for one request), "
            f"{bulk_rate / ceilings['same_path']:.0%} of (a); {cpu.report(events)}; by CPU per "
            f"event, (a)/(b) = {ceilings['same_path_cpu_us'] / cpu.last_us_per_event:.0%}"
        )

    def wrk_phase(
        self, label: str, mode: str, per_request: int, clients: int, seconds: int,
        ceiling: float, cpu: CpuMeter,
    ) -> None:  # fmt: skip
        prefix = f"{mode}-{uuid.uuid4().hex[:8]}"
        before = flush_totals(self.url, self.args.workers)
        cpu.begin()
        run = run_wrk(self.url, self.api_key, prefix, mode, per_request, clients, seconds)
        events = run.requests * per_request
        cpu_used = cpu.report(max(events, 1))
        flushes = flush_report(before, flush_totals(self.url, self.args.workers))
        stored = verify_stored(
            self.warehouse, self.organization_id, prefix, events, clients * per_request
        )
        rate = events / run.seconds
        failed = f", {run.failed} requests FAILED" if run.failed else ""
        print(
            f"{label}: {rate:,.0f} events/s, p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, "
            f"{rate / ceiling:.0%} of (a){failed}; {stored}; {flushes}; {cpu_used}, "
            f"wrk {run.cpu_s / max(events, 1) * 1e6:.1f} us"
        )


if __name__ == "__main__":
    main()
