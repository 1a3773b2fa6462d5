"""Dashboards: the time of each page's warehouse queries, and of the dbt build of the marts.

Generates a billing history in the engine (customers on three plans in two currencies, upgrades,
churn, usage events, monthly invoices with payments and refunds), builds the marts with dbt, then
times the marts' daily build after one more day of events (the incremental marts re-aggregate
that day only), then records the queries each dashboards page runs (Streamlit AppTest, first
load with every filter at its default; "usage+region" is the Usage page filtered by region, an
event property every metric declares, so read from fct_usage_daily_by_property) and replays
them without cache, page by page, reporting p50/p95 of the page total and its slowest query.

Before each timed build (the marts' first build, after the rating models they read; the daily
build, after the day's events) the benchmark waits until the engine's background merges have
settled (bench/merges.py: no merge running and no part changed for 30 s, at most 30 min) and
prints the wait, the warehouse CPU seconds it took and the events' parts per month: the builds
read the parts the engine's own merges leave, nothing is forced. --no-settle times each build
right after its load, beside those merges.

Each build prints its wall time and CPU seconds: the warehouse's (when its process runs on this
machine: the embedded server the benchmark starts, or --warehouse-pid) and dbt's. On a shared
machine wall times mostly measure waiting for a core; CPU seconds compare across runs.

Run: .venv/bin/python bench/dashboards.py                      # small and quick (~3 minutes)
     .venv/bin/python bench/dashboards.py --customers 10000 --events 100000000 --months 3
     [--no-settle]
Against an existing ClickHouse: set WAREHOUSE_URL / MH_WAREHOUSE_USER / MH_WAREHOUSE_PASSWORD
(and --warehouse-pid for its CPU seconds when it runs on this machine).
Targets (2 cores): every page's queries <= 500 ms p95; daily dbt build of the analytics marts
<= 30 s (the first, full build of the event-scale marts reads the whole history).

The catalog and events are the rating benchmark's (bench/rating.py): count, two field sums,
unique count and max metrics, each declaring region (eu, us) as a filter, 3-5 charges per plan,
events with value, user and region properties (see CHARGES and insert_events).

Where a build's warehouse CPU goes (10M events, 10,000 customers, 3 months; FORMAT Null runs of
each model's SQL, load average 5-9 from other runs): only fct_usage_daily_by_subscription (4.1-5.0
CPU-s: the FINAL merge of the events ~1.6-2.2, the field's lookup and Decimal sum ~1.3-1.7, the
GROUP BY of the metric's position, subscription and day with the max ingested_at the rest) and
fct_usage_daily_by_property (~3.0 since it keeps each metric's declared filter keys only, here
region, one row per event instead of three, against 4.0-4.4 before at the same load of 4-7:
the events' scan with the metric lookup ~0.8, reading the properties map and looking up the key
~1.2, grouping ~0.8-1.0, the stored counts per day ~0.3 to find the days with retries; each day
with a retry read with FINAL instead) grow with the events, and only
on a full build or for days that received events. The
property mart reads the subscription mart's counts, so the two event scans run one after the
other, each with both cores. fct_mrr_daily (~0.8) grows with subscriptions and their changes;
every other mart reads marts and takes under 0.7. The rest of a build is dbt (~5-6 CPU-s:
start, parse, DDL of 19 models). Late events spread over every past day make a daily build
re-read every day (as a full build does).

On this data with the packed key (`--customers 10000 --events 10000000 --months 3 --repeat 10`,
2026-11-27, load average 7-9): first full build 24.3 s wall, 19.5 warehouse CPU-s + 5.7 dbt;
daily build 13.4 s wall, 9.2 CPU-s; worst page p95 102 ms. The same command before and after
the 6-byte event key, one after the other at a load average of 9-15: first full build 29.4 and
25.0 warehouse CPU-s (118.7 and 68.4 s wall). At 100M with it, at a load average of 17.6 at
the start (2026-11-27 08:15-08:30): 109.2 s wall, 131.3 warehouse CPU-s, not comparable with
the idle figures below (background merges of the new events and contention included).
At 100M events (`--customers 10000 --events 100000000 --months 3 --repeat 10`, 2026-11-27,
load average 3-5): first full build 55.0 s wall, 97.3 warehouse CPU-s + 6.1 dbt
(fct_usage_daily_by_property 25.7 s, fct_usage_daily_by_subscription 23.6 s; above its 30 s
target); daily build after 1,075,268 new events 20.2 s wall, 28.0 CPU-s; worst page p95 86 ms.

With each metric declaring region as a filter and the property mart keeping declared keys only
(2026-11-27): at 10M, first full build 22.0 and 21.7 warehouse CPU-s + 5.5 and 5.6 dbt (27.7
and 61.2 s wall, load 3-5 and 9-20) against 18.3 and 20.8 before (13.7 and 43.5 s wall, load
5-7 and 6-9): within the noise of the background merges of the just generated events (the
property mart's own SQL, FORMAT Null, ~3.0 against 4.0-4.4); daily build 12.0 and 13.2 CPU-s;
worst page p95 124 and 270 ms. At 100M, one run under a load of 6-13 (10:34-10:56 UTC): first
full build 74.5 s wall, 91.3 warehouse CPU-s + 4.5 dbt (fct_usage_daily_by_subscription 35.9 s,
fct_usage_daily_by_property 34.0 s); daily build 46.3 s wall, 33.9 CPU-s; worst page p95 111 ms
(usage+region 111 ms); not comparable with the idle figures. Re-run idle (11:53-12:00 UTC,
load average 2-7 from its own generation and merges): first full build 49.2 s wall, 86.4
warehouse CPU-s + 5.8 dbt (fct_usage_daily_by_subscription 26.8 s, fct_usage_daily_by_property
17.2 s; above its 30 s target); daily build 22.3 s wall, 31.3 CPU-s; worst page p95 148 ms.

With the earlier count-only catalog (one count metric, one region property per event), at 100M
events (`--customers 10000 --events 100000000 --months 3 --repeat 10`): before the subscription
mart's two changes (its key, its sum compiled out), 2026-11-26, load average 2-5: the first full
build 32.9 s wall, 55.3 warehouse CPU-s (fct_usage_daily_by_subscription 20.0 s,
fct_usage_daily_by_property 8.1 s, one after the other); with them, on an idle machine, 30.2 and
33.1 s wall, 50.0 and 54.9 CPU-s; the daily build 16-18 s; the worst page p95 <= 115 ms
(dbt_project/README.md, "Analytics marts: build benchmark").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The rating benchmark's metrics and charges (a count, two field-summed metrics, a unique count and
# a max), so the marts build over the same data; here every charge is billed in arrears.
from bench.merges import settle_and_report  # noqa: E402
from bench.process import cpu_seconds  # noqa: E402
from bench.rating import CHARGES  # noqa: E402
from tests.analytics.dbt_runner import run_dbt  # noqa: E402
from tests.conftest import start_embedded_server  # noqa: E402
from warehouse.client import get_client  # noqa: E402
from warehouse.migrate import migrate  # noqa: E402
from warehouse.settings import Settings  # noqa: E402

# Each metric declares its events' region as a filter, as bench/rating.py's catalog does: the
# property mart keeps that key only, and "usage+region" reads it there.
METRIC_FILTERS = "map('region', ['eu', 'us'])"
PAGES = ["overview", "revenue", "receivables", "usage", "customer_360", "invoices"]
START = "2024-01-01"
EVENTS_PER_INSERT = 10_000_000
DBT_TIMEOUT_S = 4 * 3600  # rating 100M events takes a while


def uuid_of(kind: str, number: str) -> str:
    """A deterministic UUID for the n-th record of a kind, so generated tables join."""
    return (
        "reinterpretAsUUID(toFixedString(concat("
        f"reinterpretAsString(cityHash64('{kind}', {number})),"
        f" reinterpretAsString(cityHash64('{kind}-2', {number}))), 16))"
    )


def generate(client: Any, customers: int, events: int, months: int) -> str:
    """Write the history into the catalog, events and invoicing tables; return the rating day."""
    org = uuid_of("org", "0")
    version = "toUInt64(toUnixTimestamp64Micro(now64(6)))"
    end = f"addMonths(toDate('{START}'), {months})"
    client.command(
        "insert into organizations (organization_id, name, created_at, updated_at, version)"
        f" select {org}, 'Bench organization', now64(3), now64(3), {version}"
    )
    for index, (code, aggregation, field, _, _) in enumerate(CHARGES):
        field_sql = f"'{field}'" if field else "null"
        client.command(
            "insert into billable_metrics (organization_id, id, code, name, aggregation_type,"
            " field_name, filters, created_at, updated_at, version)"
            f" select {org}, {uuid_of('metric', str(index))}, '{code}', '{code}', '{aggregation}',"
            f" {field_sql}, {METRIC_FILTERS}, now64(3), now64(3), {version}"
        )
    # Plans 0-2 in USD, 3-5 the same in EUR: starter, growth, scale.
    client.command(
        "insert into plans (organization_id, id, code, name, interval, amount_cents,"
        " amount_currency, created_at, updated_at, version)"
        f" select {org}, {uuid_of('plan', 'number')},"
        " concat(['starter', 'growth', 'scale'][number % 3 + 1], if(number >= 3, '_eur', '')),"
        " ['Starter', 'Growth', 'Scale'][number % 3 + 1], 'monthly',"
        " [4900, 19900, 99900][number % 3 + 1], if(number >= 3, 'EUR', 'USD'),"
        f" now64(3), now64(3), {version} from numbers(6)"
    )
    # Plan p has the first 3 + p % 3 charges (starter 3, growth 4, scale 5), all in arrears.
    for index, (_, _, _, model, properties) in enumerate(CHARGES):
        client.command(
            "insert into charges (organization_id, id, plan_id, billable_metric_id, position,"
            " charge_model, properties, created_at, updated_at, version)"
            f" select {org}, {uuid_of('charge', f'number * 10 + {index}')},"
            f" {uuid_of('plan', 'number')}, {uuid_of('metric', str(index))}, {index},"
            f" '{model}', '{json.dumps(properties)}', now64(3), now64(3), {version}"
            f" from numbers(6) where 3 + number % 3 > {index}"
        )
    client.command(
        "insert into customers (organization_id, id, external_id, name, currency,"
        " created_at, updated_at, version)"
        f" select {org}, {uuid_of('customer', 'number')}, concat('customer_', toString(number)),"
        " concat('Customer ', toString(number)), if(number % 10 = 0, 'EUR', 'USD'),"
        f" now64(3), now64(3), {version} from numbers({customers})"
    )
    # Every customer subscribes in the first month; one in ten churns mid-way, one in twenty
    # upgrades one plan up on the 15th of the second month (a second subscription row).
    plan = "(number % 10 = 0) * 3 + number % 3"
    started = f"toDateTime64(toDate('{START}') + number % 28, 3, 'UTC')"
    churn_at = f"toDateTime64(addDays(addMonths(toDate('{START}'), 1), 14), 3, 'UTC')"
    client.command(
        "insert into subscriptions (organization_id, id, external_id, customer_id, plan_id,"
        " billing_time, status, subscription_at, started_at, terminated_at, next_subscription_id,"
        " created_at, updated_at, version)"
        f" select {org}, {uuid_of('subscription', 'number')}, concat('sub_', toString(number)),"
        f" {uuid_of('customer', 'number')}, {uuid_of('plan', plan)}, 'calendar',"
        " if(number % 10 = 3 or number % 20 = 1, 'terminated', 'active'),"
        f" {started}, {started},"
        f" if(number % 10 = 3 or number % 20 = 1, {churn_at}, null),"
        f" if(number % 20 = 1, {uuid_of('upgrade', 'number')}, null),"
        f" now64(3), now64(3), {version} from numbers({customers})"
    )
    client.command(
        "insert into subscriptions (organization_id, id, external_id, customer_id, plan_id,"
        " billing_time, status, subscription_at, started_at, previous_subscription_id,"
        " created_at, updated_at, version)"
        f" select {org}, {uuid_of('upgrade', 'number')}, concat('sub_', toString(number)),"
        f" {uuid_of('customer', 'number')}, {uuid_of('plan', f'least({plan} + 1, 5)')},"
        f" 'calendar', 'active', {churn_at}, {churn_at}, {uuid_of('subscription', 'number')},"
        f" now64(3), now64(3), {version} from numbers({customers}) where number % 20 = 1"
    )
    seconds = f"dateDiff('second', toDateTime('{START}'), toDateTime({end}))"
    insert_events(client, customers, events, f"toDateTime('{START}')", seconds)
    client.command(
        "insert into invoices (organization_id, id, customer_id, external_customer_id,"
        " invoice_type, status, payment_status, number, billing_date, issuing_date,"
        " payment_due_date, net_payment_term, currency, fees_amount_cents,"
        " sub_total_excluding_taxes_amount_cents, sub_total_including_taxes_amount_cents,"
        " total_amount_cents, total_paid_amount_cents, fees_version, created_at, updated_at,"
        " version)"
        f" select {org}, {uuid_of('invoice', 'number')},"
        f" {uuid_of('customer', f'number % {customers}')},"
        f" concat('customer_', toString(number % {customers})), 'subscription', 'finalized',"
        " if(cityHash64(number) % 5 = 0, 'pending', 'succeeded'),"
        " concat('INV-', toString(number)),"
        f" addMonths(toDate('{START}'), intDiv(number, {customers}) + 1) as issued, issued,"
        " issued + 14, 14, if(number % 10 = 0, 'EUR', 'USD'),"
        " [4900, 19900, 99900][number % 3 + 1] as total, total, total, total,"
        " if(cityHash64(number) % 5 = 0, 0, total), 1, now64(3), now64(3),"
        f" 2 * 100000000000000000 + {version} from numbers({customers} * {months})"
    )
    line_plan = f"(intDiv(number, 2) % {customers} % 10 = 0) * 3 + intDiv(number, 2) % 3"
    client.command(
        "insert into invoice_fees (organization_id, invoice_id, fees_version, id, fee_type,"
        " customer_id, plan_id, billable_metric_code, invoice_display_name, period_from,"
        " period_to, currency, units, amount_cents, created_at)"
        f" select {org}, {uuid_of('invoice', 'intDiv(number, 2)')}, 1,"
        f" {uuid_of('line', 'number')}, if(number % 2 = 0, 'subscription', 'charge'),"
        f" {uuid_of('customer', f'intDiv(number, 2) % {customers}')},"
        f" {uuid_of('plan', line_plan)},"
        " if(number % 2 = 0, null, 'api_calls'), 'line', now64(3), now64(3),"
        " if(intDiv(number, 2) % 10 = 0, 'EUR', 'USD'), 1,"
        " if(number % 2 = 0, [4900, 19900, 99900][intDiv(number, 2) % 3 + 1], 1000), now64(3)"
        f" from numbers({customers} * {months} * 2)"
    )
    client.command(
        "insert into payments (organization_id, id, invoice_id, provider, provider_payment_id,"
        " amount_cents, currency, status, created_at, updated_at)"
        f" select {org}, {uuid_of('payment', 'number')}, {uuid_of('invoice', 'number')}, 'manual',"
        " toString(number), [4900, 19900, 99900][number % 3 + 1],"
        " if(number % 10 = 0, 'EUR', 'USD'), 'succeeded', now64(3), now64(3)"
        f" from numbers({customers} * {months}) where cityHash64(number) % 5 != 0"
    )
    return f"{int(START[:4]) + (months // 12)}-{(months % 12) + 1:02d}-15T00:00:00"


def insert_events(client: Any, customers: int, count: int, start: str, seconds: str) -> None:
    """``count`` events spread over ``seconds`` from ``start``, each ingested a minute after it
    happened (as live traffic is), so the incremental marts see the history in time order. As in
    the rating benchmark, an event has one of its subscription's plan's codes at random (so a
    field-summed metric gets about a third of the events) and three properties: a value (the
    sum and max metrics' field), a user (the unique count's) and a region."""
    org = uuid_of("org", "0")
    codes = "[" + ", ".join(f"'{code}'" for code, *_ in CHARGES) + "]"
    # In statements of at most 10M events, each well within the client's read timeout.
    for offset in range(0, count, EVENTS_PER_INSERT):
        client.command(
            "insert into events (organization_id, external_subscription_id, transaction_id,"
            " code, timestamp, properties, ingested_at, raw)"
            f" select {org}, concat('sub_', toString(subscription)),"
            f" concat(toString(toUnixTimestamp({start})), '-', toString(number)),"
            f" {codes}[1 + cityHash64(number, 2) % (3 + subscription % 3)],"
            f" toDateTime64({start} + cityHash64(number, 1) % {seconds}, 3, 'UTC') as happened,"
            " map('value', toString(cityHash64(number, 3) % 100),"
            " 'user', toString(cityHash64(number, 4) % 40),"
            " 'region', ['eu', 'us', 'apac'][number % 3 + 1]),"
            " least(toDateTime64(happened + 60, 6, 'UTC'), now64(6)), ''"
            f" from (select number, cityHash64(number) % {customers} as subscription"
            f" from numbers({offset}, {min(EVENTS_PER_INSERT, count - offset)}))",
            settings={"max_insert_block_size": 1_000_000},
        )


def record_page_queries(env: dict[str, str]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The queries each page runs on its first load, recorded through Streamlit's AppTest."""
    from streamlit.testing.v1 import AppTest

    import dashboards.data

    recorded: list[tuple[str, dict[str, Any]]] = []
    original = dashboards.data._cached_query

    def recording(warehouse: Any, sql: str, parameters: dict[str, Any]) -> Any:
        recorded.append((sql, parameters))
        return original(warehouse, sql, parameters)

    queries: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    with (
        mock.patch.dict(os.environ, env),
        mock.patch.object(dashboards.data, "_cached_query", recording),
    ):
        app = AppTest.from_file(
            str(Path(dashboards.data.__file__).with_name("app.py")), default_timeout=600
        )
        for page in PAGES:
            recorded.clear()
            app.run() if page == "overview" else app.switch_page(f"pages/{page}.py").run()
            if app.exception:
                raise RuntimeError(f"{page}: {app.exception[0].message}")
            queries[page] = list(recorded)
            if page == "usage":
                # The same page filtered by region, a property every metric declares: read
                # from the property rollup.
                recorded.clear()
                app.selectbox(key="usage_property_key").set_value("region").run()
                queries["usage+region"] = list(recorded)
                if not any("fct_usage_daily_by_property" in sql for sql, _ in recorded):
                    sys.exit("usage+region did not read fct_usage_daily_by_property")
                app.selectbox(key="usage_property_key").set_value(None).run()
    return queries


def print_slowest_models(run_results: Path, count: int = 5) -> None:
    results = json.loads(run_results.read_text())["results"]
    for result in sorted(results, key=lambda r: -r["execution_time"])[:count]:
        print(f"  {result['unique_id'].split('.')[-1]:<36}{result['execution_time']:>8.1f} s")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def replay(
    client: Any, queries: list[tuple[str, dict[str, Any]]], repeat: int
) -> tuple[list[float], list[float]]:
    """Page totals of each replay, and each query's median time (seconds)."""
    totals = []
    times: list[list[float]] = [[] for _ in queries]
    for _ in range(repeat):
        page_started = time.perf_counter()
        for (sql, parameters), measured in zip(queries, times, strict=True):
            started = time.perf_counter()
            client.query(sql, parameters=parameters)
            measured.append(time.perf_counter() - started)
        totals.append(time.perf_counter() - page_started)
    return totals, [statistics.median(measured) for measured in times]


@contextmanager
def warehouse_env(
    database: str, warehouse_pid: int | None
) -> Iterator[tuple[dict[str, str], int | None]]:
    """An embedded server on a scratch directory, or the ClickHouse of WAREHOUSE_URL; with the
    warehouse's process id when it is known."""
    if os.environ.get("WAREHOUSE_URL"):
        settings = Settings(warehouse_database=database)
        yield (
            {
                "WAREHOUSE_URL": settings.warehouse_url,
                "MH_WAREHOUSE_USER": settings.warehouse_user,
                "MH_WAREHOUSE_PASSWORD": settings.effective_warehouse_password(),
                "MH_WAREHOUSE_DATABASE": database,
            },
            warehouse_pid,
        )
        return
    with tempfile.TemporaryDirectory(prefix="bench-dashboards-") as scratch:
        server, url, admin_password, _ = start_embedded_server(
            Path(scratch) / "data", Path(scratch) / "server.log"
        )
        assert server.process is not None
        try:
            yield (
                {
                    "WAREHOUSE_URL": url,
                    "MH_WAREHOUSE_USER": "admin",
                    "MH_WAREHOUSE_PASSWORD": admin_password,
                    "MH_WAREHOUSE_DATABASE": database,
                },
                server.process.pid,
            )
        finally:
            server.stop()


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Build:
    wall: float
    warehouse_cpu: float | None  # None: the warehouse's process is not known
    dbt_cpu: float

    def __str__(self) -> str:
        warehouse = "?" if self.warehouse_cpu is None else f"{self.warehouse_cpu:.1f}"
        return f"{self.wall:.1f} s wall; {warehouse} CPU-s warehouse + {self.dbt_cpu:.1f} CPU-s dbt"


def run_analytics(env: dict[str, str], target: Path, as_of: str, pid: int | None) -> Build:
    """Build the analytics marts (their parents built already), timed."""
    started = time.perf_counter()
    warehouse_before, dbt_before = cpu_seconds(pid), children_cpu_seconds()
    result = run_dbt(
        ["run", "--select", "path:models/marts/analytics"], env, target, as_of, DBT_TIMEOUT_S
    )
    if result.returncode:
        sys.exit(f"dbt run of the analytics marts failed:\n{result.stdout}")
    build = Build(
        time.perf_counter() - started,
        None if pid is None else cpu_seconds(pid) - warehouse_before,
        children_cpu_seconds() - dbt_before,
    )
    print_slowest_models(target / "run_results.json")
    return build


def build_marts(
    env: dict[str, str], target: Path, as_of: str, pid: int | None, settle: Callable[[str], None]
) -> None:
    """Seed, build the rating models the marts read, then the marts from scratch (timed)."""
    parents = [
        "--select",
        "+path:models/marts/analytics",
        "--exclude",
        "path:models/marts/analytics",
    ]
    started = time.perf_counter()
    for step in (["seed", "--select", "path:seeds/analytics"], ["run", *parents]):
        result = run_dbt(step, env, target, as_of, DBT_TIMEOUT_S)
        if result.returncode:
            sys.exit(f"dbt {step[0]} failed:\n{result.stdout}")
    print(f"rating models and seeds the marts read: {time.perf_counter() - started:.1f} s")
    settle("the history's load and the rating models")
    build = run_analytics(env, target, as_of, pid)
    print(
        f"first (full) build of the analytics marts: {build}"
        " (rating models built before, not counted)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=20, help="replays of each page's queries")
    parser.add_argument(
        "--warehouse-pid", type=int, help="process id of the WAREHOUSE_URL server, for its CPU-s"
    )
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="time each build right after its events' load, beside the engine's merges of them",
    )
    args = parser.parse_args()
    database = f"bench_dashboards_{secrets.token_hex(3)}"
    with warehouse_env(database, args.warehouse_pid) as (env, pid):
        settings = Settings(
            warehouse_url=env["WAREHOUSE_URL"],
            warehouse_user=env["MH_WAREHOUSE_USER"],
            warehouse_password=env["MH_WAREHOUSE_PASSWORD"],
            warehouse_database=database,
        )
        migrate(get_client(settings, database=""), database)
        client = get_client(settings)
        started = time.perf_counter()
        as_of = generate(client, args.customers, args.events, args.months)
        print(
            f"generated {args.customers} customers, {args.events} events, {args.months} months"
            f" of invoices in {time.perf_counter() - started:.1f} s (rating instant {as_of})"
        )

        def settle(after: str) -> None:
            if not args.no_settle:
                settle_and_report(client, pid, database, after)

        with tempfile.TemporaryDirectory(prefix="bench-dbt-") as target:
            build_marts(env, Path(target), as_of, pid, settle)
            # The next day's build: one more day of events, then the marts again.
            day = args.events // (31 * args.months) or 1
            insert_events(
                client,
                args.customers,
                day,
                f"addMonths(toDateTime('{START}'), {args.months})",
                "86400",
            )
            settle("the first build and the day's load")
            build = run_analytics(env, Path(target), as_of, pid)
            print(
                f"daily build of the analytics marts after {day} new events: {build}"
                " (target <= 30 s wall)"
            )
        queries = record_page_queries(env)
        print(f"{'page':<14}{'queries':>8}{'p50 ms':>10}{'p95 ms':>10}   slowest query (p50 ms)")
        worst = 0.0
        for page, page_queries in queries.items():
            totals, medians = replay(client, page_queries, args.repeat)
            p95 = percentile(totals, 0.95) * 1000
            worst = max(worst, p95)
            p50 = statistics.median(totals) * 1000
            slowest = max(range(len(medians)), key=medians.__getitem__)
            sql = " ".join(page_queries[slowest][0].split())[:60]
            print(
                f"{page:<14}{len(page_queries):>8}{p50:>10.1f}{p95:>10.1f}"
                f"   {medians[slowest] * 1000:.0f}: {sql}"
            )
        print(f"worst page p95: {worst:.1f} ms (target <= 500 ms)")


if __name__ == "__main__":
    main()
