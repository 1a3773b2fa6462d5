"""Rating benchmark: the dbt build that turns events into fees, at 1M / 10M / 100M events.

Run: .venv/bin/python bench/rating.py [--events 1000000] [--subscriptions 10000]
     [--heavy-permille 20] [--seed 42] [--loop-sample 100] [--skip-loop] [--check-refresh]
     [--keep-warehouse DIR] [--no-settle] [--cold]

Synthetic but realistic data in a fresh embedded warehouse, generated inside the warehouse
(INSERT ... SELECT over numbers() in chunks of 10M rows, with a seeded hash per column, so a seed
gives the same events): 10,000 subscriptions on 5 plans with 3-5 charges each (standard count,
graduated sum, package unique count, volume max, and a pay-in-advance percentage with free
events), calendar and anniversary billing, events spread over January-March 2024, 2% of them from
one heavy subscription. Measures:
  - the load's merges: once the history is generated, the benchmark waits until the engine's
    background merges have settled (bench/merges.py: no merge running and no part changed for
    30 s, at most 30 min) and prints the wait, the warehouse CPU seconds it took (part of the
    load's cost, not of a build) and the events' parts per month before and after; it waits
    the same way after the day's events, before timing the day. The builds then read the parts
    the engine's own merges leave (nothing is forced), as in a warehouse that received the
    events over time. --no-settle times each build right after its load, beside those merges;
  - full build: `meterhouse rate run --full-refresh --as-of 2024-04-01` (every period of the three
    months closed): wall time, events rated per second, CPU seconds of the warehouse process,
    peak RSS of the warehouse process, the slowest models;
  - incremental day: one more day of events (April 1st, plus late events for 1% of the
    subscriptions in March) rated by a plain `meterhouse rate run --as-of 2024-04-02`, and its
    share of the full build (wall time and warehouse CPU); with --check-refresh, a full refresh
    at the same instant must give the same fees fingerprint;
  - the rating path: once the history is loaded, the benchmark starts the warm rating process
    (`meterhouse rate serve`, as `meterhouse up` does: dbt imported, the project parsed, a
    forked child per run) and prints what its warm-up cost, once; both timed runs are then
    `meterhouse rate run` commands that hand their run to it, and their CPU seconds are the
    command's plus the server's (its children's included). --cold times them without a server:
    each command imports dbt and parses the project itself;
  - the per-subscription loop: one aggregation query per subscription x charge x period, the
    way request-time billing engines rate, timed on a sample and extrapolated to every
    subscription, and its ratio to the full build.
Wall times on a shared machine swing with the other work on its cores; the warehouse's CPU
seconds barely do, so both are printed.
Targets (2 cores): full build over 100M events <= 90 s, linear in events; incremental day <= 10%
of the full build.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.merges import settle_and_report  # noqa: E402
from bench.process import cpu_seconds  # noqa: E402
from meterhouse.orgs import create_organization  # noqa: E402
from meterhouse.rating import dbt_environment  # noqa: E402
from meterhouse.rating_server import SOCKET_NAME, answers  # noqa: E402
from tests.conftest import start_embedded_server  # noqa: E402
from tests.support.processes import REPO_ROOT, ServiceProcess, meterhouse_command  # noqa: E402
from warehouse.client import get_client  # noqa: E402
from warehouse.migrate import migrate  # noqa: E402
from warehouse.settings import Settings  # noqa: E402

DATABASE = "meterhouse"
PLANS = 5
# (metric code, aggregation, field, charge model, Lago properties); plan p has the first 3 + p//2.
# The last one (percentage, with free events) is billed in advance, one fee per event: the
# high-volume pay-in-advance metric that once held every earlier event in each row.
CHARGES = [
    ("api_calls", "count_agg", None, "standard", {"amount": "0.001"}),
    (
        "storage_gb",
        "sum_agg",
        "value",
        "graduated",
        {
            "graduated_ranges": [
                {"from_value": 0, "to_value": 1000, "per_unit_amount": "0.05", "flat_amount": "1"},
                {
                    "from_value": 1001,
                    "to_value": None,
                    "per_unit_amount": "0.02",
                    "flat_amount": "0",
                },
            ]
        },
    ),
    (
        "active_users",
        "unique_count_agg",
        "user",
        "package",
        {"amount": "10", "package_size": 5, "free_units": 2},
    ),
    (
        "peak_cpu",
        "max_agg",
        "value",
        "volume",
        {
            "volume_ranges": [
                {"from_value": 0, "to_value": 50, "per_unit_amount": "2", "flat_amount": "0"},
                {"from_value": 51, "to_value": None, "per_unit_amount": "1", "flat_amount": "10"},
            ]
        },
    ),
    (
        "payments",
        "sum_agg",
        "value",
        "percentage",
        {"rate": "1.5", "fixed_amount": "0.1", "free_units_per_events": 3},
    ),
]
PAY_IN_ADVANCE_CODES = {"payments"}
PERIODS = [("2024-01-01", "2024-02-01"), ("2024-02-01", "2024-03-01"), ("2024-03-01", "2024-04-01")]


def charges_of_plan(plan: int) -> int:
    return 3 + plan // 2  # 3, 3, 4, 4, 5


def seed_catalog(client: Client, organization_id: str, subscriptions: int) -> None:
    """Plans, charges, metrics, customers and subscriptions, generated inside the warehouse."""
    org = f"toUUID('{organization_id}')"
    ids = "reinterpretAsUUID(MD5(concat('{kind}-', toString({n}))))"
    common = "now64(3) AS created_at, now64(3) AS updated_at, toUInt64(1) AS version"
    # A third of the subscriptions bill on the anniversary of a day in January.
    start = (
        "toDateTime64('2024-01-01', 3, 'UTC') + toIntervalDay(if(number % 3 = 0, number % 28, 0))"
    )
    for index, (code, aggregation, field, _, _) in enumerate(CHARGES):
        field_sql = f"'{field}'" if field else "NULL"
        # Each metric declares its events' region as a filter, which no charge filter uses: fees
        # are those of metrics without filters, as in Lago.
        client.command(
            f"INSERT INTO billable_metrics (organization_id, id, code, name, aggregation_type, "
            f"field_name, filters, created_at, updated_at, version) SELECT {org}, "
            f"{ids.format(kind='metric', n=index)}, '{code}', '{code}', '{aggregation}', "
            f"{field_sql}, map('region', ['eu', 'us']), {common}"
        )
    for plan in range(PLANS):
        client.command(
            f"INSERT INTO plans (organization_id, id, code, name, interval, amount_cents, "
            f"amount_currency, created_at, updated_at, version) SELECT {org}, "
            f"{ids.format(kind='plan', n=plan)}, 'plan-{plan}', 'Plan {plan}', 'monthly', "
            f"{(plan + 1) * 1000}, 'USD', {common}"
        )
        for index in range(charges_of_plan(plan)):
            code, _, _, model, properties = CHARGES[index]
            client.command(
                f"INSERT INTO charges (organization_id, id, plan_id, billable_metric_id, position, "
                f"charge_model, pay_in_advance, properties, created_at, updated_at, version) "
                f"SELECT {org}, {ids.format(kind=f'charge-{plan}', n=index)}, "
                f"{ids.format(kind='plan', n=plan)}, {ids.format(kind='metric', n=index)}, "
                f"{index}, '{model}', {int(code in PAY_IN_ADVANCE_CODES)}, "
                f"'{json.dumps(properties)}', {common}"
            )
    client.command(
        f"INSERT INTO customers (organization_id, id, external_id, name, currency, created_at, "
        f"updated_at, version) SELECT {org}, {ids.format(kind='customer', n='number')}, "
        f"concat('cust-', toString(number)), 'Customer', 'USD', {common} "
        f"FROM numbers({subscriptions})"
    )
    client.command(
        f"INSERT INTO subscriptions (organization_id, id, external_id, customer_id, plan_id, "
        f"billing_time, status, subscription_at, started_at, created_at, updated_at, version) "
        f"SELECT {org}, {ids.format(kind='subscription', n='number')}, "
        f"concat('sub-', toString(number)), {ids.format(kind='customer', n='number')}, "
        f"{ids.format(kind='plan', n='number % 5')}, "
        f"if(number % 3 = 0, 'anniversary', 'calendar'), 'active', "
        f"{start}, {start}, "
        f"{common} FROM numbers({subscriptions})"
    )


def seeded(stream: int, seed: int) -> str:
    """A deterministic pseudo-random UInt64 per generated row (``number``) and stream: the same
    seed gives the same events, whatever the engine's threads do."""
    return f"sipHash64({seed}, {stream}, number)"


# Rows generated per INSERT ... SELECT: the engine sorts each insert's block into parts in memory,
# so 100M events go in ten statements rather than one.
GENERATION_CHUNK = 10_000_000


def insert_events(
    client: Client,
    organization_id: str,
    events: int,
    subscriptions: int,
    start: str,
    seconds: int,
    prefix: str,
    seed: int,
    subscription_modulo: int | None = None,
    heavy_permille: int = 0,
) -> None:
    """``events`` events over ``seconds`` from ``start``, generated inside the warehouse by
    INSERT ... SELECT over numbers() (no row passes through Python), ``GENERATION_CHUNK`` rows at a
    time. Every column hashes the row's number, so the events do not depend on the chunking.
    ``heavy_permille`` of them go to one heavy subscription (sub-4, whose plan has every charge)."""
    modulo = subscription_modulo or subscriptions
    spread = f"({seeded(1, seed)} % {modulo}) * intDiv({subscriptions}, {modulo})"
    codes = "[" + ", ".join(f"'{code}'" for code, *_ in CHARGES) + "]"
    for first in range(0, events, GENERATION_CHUNK):
        rows = min(GENERATION_CHUNK, events - first)
        client.command(
            f"""INSERT INTO events (organization_id, external_subscription_id, transaction_id, code,
                timestamp, properties, precise_total_amount_cents, raw)
            SELECT toUUID('{organization_id}'),
                   concat('sub-', toString(sub)),
                   concat('{prefix}-', toString(number)),
                   {codes}[1 + {seeded(2, seed)} % (3 + intDiv(sub % {PLANS}, 2))],
                   toDateTime64('{start}', 3, 'UTC')
                       + toIntervalMillisecond({seeded(3, seed)} % {seconds * 1000}),
                   map('value', toString({seeded(4, seed)} % 100),
                       'user', toString({seeded(5, seed)} % 40),
                       'region', if({seeded(6, seed)} % 2 = 0, 'eu', 'us')),
                   NULL, ''
            FROM (SELECT number, if({seeded(7, seed)} % 1000 < {heavy_permille}, 4, {spread}) AS sub
                  FROM numbers({first}, {rows}))""",
            settings={"max_insert_block_size": 1_000_000, "max_threads": 2},
        )


class PeakMemory:
    """Samples a process's resident memory (VmRSS) while running; keeps the peak in MiB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.peak_mib = max(self.peak_mib, self._rss_mib())

    def __enter__(self) -> PeakMemory:
        self.peak_mib = self._rss_mib()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class RatingRun:
    wall: float  # seconds, the whole command as a user runs it
    models: float  # seconds dbt spent running the models (the rest: starting, parsing)
    warehouse_cpu: float  # CPU seconds the warehouse spent on the run
    dbt_cpu: float  # CPU seconds of the command itself (meterhouse, dbt: start, parse, compile)
    slowest: list[tuple[str, float]]  # the slowest models and their seconds

    def summary(self) -> str:
        slowest = ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.slowest)
        return (
            f"{self.wall:.1f} s wall, {self.models:.1f} s in dbt models, "
            f"{self.warehouse_cpu:.1f} CPU-s in the warehouse + {self.dbt_cpu:.1f} CPU-s in "
            f"meterhouse/dbt (slowest models: {slowest})"
        )


def rating_environment(settings: Settings, workdir: Path) -> dict[str, str]:
    """The environment of the rating commands and of the rating server: the bench's warehouse,
    dbt target and Meterhouse home."""
    target = workdir / "dbt_target"
    return {
        **os.environ,
        **dbt_environment(settings),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target / "logs"),
        "MH_HOME": str(workdir / "home"),
    }


class RatingServer(ServiceProcess):
    """`meterhouse rate serve` started as `meterhouse up` starts it, waited for until warm."""

    def __init__(self, environment: dict[str, str], workdir: Path) -> None:
        socket = workdir / "home" / SOCKET_NAME
        super().__init__(
            meterhouse_command("rate", "serve"),
            f"unix:{socket}",
            env=environment,
            log_path=workdir / "rating-server.log",
            startup_timeout=300,
            ready=lambda: answers(socket),
        )

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid if self.process else None, with_children=True)


def start_rating_server(environment: dict[str, str], workdir: Path) -> RatingServer:
    started = time.perf_counter()
    server = RatingServer(environment, workdir)
    server.start()
    print(f"rating server warm (`meterhouse rate serve`: dbt imported, project parsed) in "
          f"{time.perf_counter() - started:.1f} s, {server.cpu_seconds():.1f} CPU-s, "
          "once")  # fmt: skip
    return server


def rate(
    environment: dict[str, str],
    target: Path,
    warehouse_pid: int,
    server: RatingServer | None,
    *args: str,
) -> RatingRun:
    """One `meterhouse rate run` as a user runs it, with dbt's own timings of the models."""
    cpu_before = cpu_seconds(warehouse_pid)
    server_before = server.cpu_seconds() if server else 0.0
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        meterhouse_command("rate", "run", "--no-progress", "--no-tests", *args),
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    warehouse_cpu = cpu_seconds(warehouse_pid) - cpu_before
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    dbt_cpu = (children.ru_utime + children.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    if server is not None:
        dbt_cpu += server.cpu_seconds() - server_before
    if result.returncode != 0:
        raise SystemExit(f"rate run failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    run_results = json.loads((target / "run_results.json").read_text())
    nodes = sorted(run_results["results"], key=lambda node: -node["execution_time"])
    slowest = [(node["unique_id"].rsplit(".", 1)[1], node["execution_time"]) for node in nodes[:4]]
    return RatingRun(elapsed, float(run_results["elapsed_time"]), warehouse_cpu, dbt_cpu, slowest)


def fees_fingerprint(client: Client) -> str:
    """An order-independent hash of every fee's identity, money, units and evidence: the same
    seed and event count must give the same fingerprint whatever the SQL that rated them, so a
    faster build is checked against the one before it by comparing the printed figures. Fee ids
    derive from the organization, a new one each run, so the fee is identified by its catalog ids
    (generated from the seed) instead."""
    row = client.query(
        # The tuple's text, since the hash of a tuple holding a NULL is NULL.
        "SELECT count(), sum(cityHash64(toString(tuple(fee_type, subscription_id, charge_id, "
        "charge_filter_id, source_transaction_id, period_from, period_to, amount, amount_cents, "
        "units, precise_unit_amount, events_count, first_event_at, last_event_at, "
        "billing_date)))) FROM fct_fees"
    ).result_rows[0]
    return f"{row[0]}:{row[1]:016x}"


def per_subscription_loop(client: Client, organization_id: str, sample: int) -> tuple[float, int]:
    """Seconds for ``sample`` subscriptions rated one query per subscription x charge x period,
    and the number of queries that took."""
    queries = 0
    started = time.perf_counter()
    for number in range(sample):
        plan = number % 5
        for code, aggregation, field, _, _ in CHARGES[: charges_of_plan(plan)]:
            value = f"toDecimal128OrNull(properties['{field}'], 12)" if field else "1"
            aggregate = {
                "count_agg": "count()",
                "sum_agg": f"sum({value})",
                "max_agg": f"max({value})",
                "unique_count_agg": f"uniqExact(properties['{field}'])",
            }[aggregation]
            for period_from, period_to in PERIODS:
                client.query(
                    f"SELECT {aggregate}, count() FROM events WHERE organization_id = {{o:UUID}} "
                    "AND external_subscription_id = {s:String} AND code = {c:String} "
                    "AND timestamp >= {f:DateTime64(3)} AND timestamp < {t:DateTime64(3)}",
                    parameters={
                        "o": organization_id,
                        "s": f"sub-{number}",
                        "c": code,
                        "f": period_from,
                        "t": period_to,
                    },
                )
                queries += 1
    return time.perf_counter() - started, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="1M, 10M or 100M")
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--heavy-permille", type=int, default=20,
                        help="events (per mille) sent by one heavy subscription")  # fmt: skip
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated events")
    parser.add_argument("--loop-sample", type=int, default=100, help="subscriptions timed")
    parser.add_argument("--skip-loop", action="store_true", help="skip the per-subscription loop")
    parser.add_argument("--check-refresh", action="store_true",
                        help="compare the incremental day with a full refresh")  # fmt: skip
    parser.add_argument("--keep-warehouse", type=Path, metavar="DIR",
                        help="build the warehouse in DIR (new or empty) and keep its data and "
                        "dbt target there, to profile the day's compiled SQL")  # fmt: skip
    parser.add_argument("--no-settle", action="store_true",
                        help="time each build right after its events' load, beside the "
                        "engine's merges of them")  # fmt: skip
    parser.add_argument("--cold", action="store_true",
                        help="no rating server: each run starts dbt in a new process")  # fmt: skip
    options = parser.parse_args()

    if options.keep_warehouse is not None:
        workdir = options.keep_warehouse
        workdir.mkdir(parents=True, exist_ok=True)
        if any(workdir.iterdir()):
            raise SystemExit(f"--keep-warehouse: {workdir} is not empty")
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench_rating_"))
    server, url, password, _ = start_embedded_server(workdir / "data", workdir / "server.log")
    rating_server: RatingServer | None = None
    try:
        assert server.process is not None
        pid = server.process.pid
        settings = Settings(
            warehouse_url=url,
            warehouse_user="admin",
            warehouse_password=password,
            warehouse_database=DATABASE,
        )
        migrate(get_client(settings, database=""), DATABASE)
        client = get_client(settings, send_receive_timeout=3600)
        organization, _ = create_organization(client, "bench")
        organization_id = str(organization.organization_id)

        started = time.perf_counter()
        seed_catalog(client, organization_id, options.subscriptions)
        insert_events(client, organization_id, options.events, options.subscriptions,
                      "2024-01-01", 91 * 86400, "bulk", options.seed,
                      heavy_permille=options.heavy_permille)  # fmt: skip
        print(f"generated {options.events:,} events for {options.subscriptions:,} subscriptions "
              f"in {time.perf_counter() - started:.1f} s "
              f"({options.heavy_permille / 10:g}% from one subscription)")  # fmt: skip

        if not options.no_settle:
            settle_and_report(client, pid, DATABASE, "the history's load")
        target = workdir / "dbt_target"
        environment = rating_environment(settings, workdir)
        if options.cold:
            print("rating path: cold (no rating server, dbt started by each command)")
        else:
            rating_server = start_rating_server(environment, workdir)
        with PeakMemory(pid) as memory:
            full = rate(environment, target, pid, rating_server,
                        "--full-refresh", "--as-of", "2024-04-01T00:00:00")  # fmt: skip
        fees = client.query("SELECT count(), sum(amount_cents) FROM fct_fees").result_rows[0]
        print(f"full build: {full.summary()}; {options.events / full.wall:,.0f} events/s rated, "
              f"{fees[0]:,} fees, peak warehouse RSS {memory.peak_mib:,.0f} MiB")  # fmt: skip
        per_event_us = 1e6 * full.warehouse_cpu / options.events
        # Linear growth keeps this flat from 1M to 100M; 90 s on 2 cores allows 1.8 us at 100M.
        print(f"full build warehouse CPU per event: {per_event_us:.2f} us")
        print(f"fees fingerprint: {fees_fingerprint(client)}")

        day_events = max(options.events // 91, 1)
        insert_events(client, organization_id, day_events, options.subscriptions,
                      "2024-04-01", 86400, "day", options.seed + 1)  # fmt: skip
        late_events = max(day_events // 100, 1)
        one_percent = max(options.subscriptions // 100, 1)
        insert_events(client, organization_id, late_events, options.subscriptions,
                      "2024-03-01", 31 * 86400, "late", options.seed + 2, one_percent)  # fmt: skip
        if not options.no_settle:
            settle_and_report(client, pid, DATABASE, "the full build and the day's load")
        with PeakMemory(pid) as memory:
            day = rate(environment, target, pid, rating_server, "--as-of", "2024-04-02T00:00:00")
        print(f"incremental day ({day_events:,} new + {late_events:,} late events): "
              f"{day.summary()}; peak warehouse RSS {memory.peak_mib:,.0f} MiB")  # fmt: skip
        cpu_share = 100 * day.warehouse_cpu / full.warehouse_cpu
        total_share = 100 * (day.warehouse_cpu + day.dbt_cpu) / (full.warehouse_cpu + full.dbt_cpu)
        print(f"incremental day / full build: {100 * day.wall / full.wall:.1f}% of the wall time, "
              f"{cpu_share:.1f}% of the warehouse CPU, {total_share:.1f}% of all CPU")  # fmt: skip
        incremental_fees = fees_fingerprint(client)
        print(f"fees fingerprint after the incremental day: {incremental_fees}")
        if options.check_refresh:
            rate(environment, target, pid, rating_server,
                 "--full-refresh", "--as-of", "2024-04-02T00:00:00")  # fmt: skip
            refreshed_fees = fees_fingerprint(client)
            verdict = "same fees" if refreshed_fees == incremental_fees else "DIFFERENT FEES"
            print(f"full refresh at the same instant: {refreshed_fees} ({verdict})")

        if not options.skip_loop:
            sample = min(options.loop_sample, options.subscriptions)
            cpu_before = cpu_seconds(pid)
            loop_seconds, queries = per_subscription_loop(client, organization_id, sample)
            loop_cpu = cpu_seconds(pid) - cpu_before
            scale = options.subscriptions / sample
            extrapolated = loop_seconds * scale
            print(f"per-subscription loop: {queries:,} queries for {sample} subscriptions in "
                  f"{loop_seconds:.1f} s ({loop_cpu:.1f} CPU-s), extrapolated to "
                  f"{options.subscriptions:,}: {extrapolated:,.0f} s = "
                  f"{extrapolated / full.wall:.1f}x the set-based build's wall time, "
                  f"{loop_cpu * scale / full.warehouse_cpu:.1f}x its warehouse CPU")  # fmt: skip
    finally:
        if rating_server is not None:
            rating_server.stop()
        server.stop()  # the warehouse's memory is freed either way
        if options.keep_warehouse is None:
            shutil.rmtree(workdir, ignore_errors=True)  # 100M events take several GB
        else:
            print(f"warehouse kept in {workdir}: serve it with `meterhouse warehouse serve "
                  f"--data-dir {workdir / 'data'}`, database {DATABASE}; dbt target in "
                  f"{workdir / 'dbt_target'}")  # fmt: skip


if __name__ == "__main__":
    main()
