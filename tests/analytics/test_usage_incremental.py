"""The usage marts that read raw events aggregate each day once: a later build re-aggregates
only the days that received events since the previous build (checked on a database of its own,
with the two event-scale models and their staging parents only)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from tests.analytics.dbt_runner import run_dbt
from tests.conftest import Warehouse
from tests.rating.catalog import Catalog, utc
from warehouse.migrate import migrate

MODELS = ["+fct_usage_daily_by_subscription", "fct_usage_daily_by_property"]
AS_OF = "2024-02-01T00:00:00"


def insert_events(
    client: Client,
    organization_id: uuid.UUID,
    events: list[tuple[str, str, dict[str, str], str]],
    code: str = "storage",
) -> None:
    """Events of sub_a as (transaction id, timestamp, properties, ingested_at): live traffic is
    ingested a minute after it happens ("" for that)."""
    rows = [
        [organization_id, "sub_a", transaction_id, code, utc(timestamp), properties,
         utc(ingested_at) if ingested_at else utc(timestamp) + timedelta(minutes=1), ""]
        for transaction_id, timestamp, properties, ingested_at in events
    ]  # fmt: skip
    client.insert(
        "events",
        rows,
        column_names=["organization_id", "external_subscription_id", "transaction_id", "code",
                      "timestamp", "properties", "ingested_at", "raw"],
    )  # fmt: skip


def run_models(env: dict[str, str], target: Path) -> None:
    result = run_dbt(["run", "--select", *MODELS], env, target, AS_OF)
    assert result.returncode == 0, result.stdout


@pytest.fixture(scope="module")
def usage_database(
    warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Client, uuid.UUID, dict[str, str], Path]]:
    database = f"mh_usage_incremental_{secrets.token_hex(4)}"
    migrate(warehouse.client(database=""), database)
    client = warehouse.client(database=database)
    catalog = Catalog(client)
    # Declares one filter key: the property mart keeps region only (not gb, the field).
    catalog.metric("storage", "sum_agg", "gb", filters={"region": ["eu", "us"]})
    env = {**warehouse.env, "MH_WAREHOUSE_DATABASE": database}
    yield client, catalog.organization_id, env, tmp_path_factory.mktemp("dbt_usage")
    warehouse.client(database="").command(f"DROP DATABASE IF EXISTS `{database}`")


def rows(client: Client, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in client.query(sql).result_rows]


def test_a_build_reaggregates_only_days_with_new_events(
    usage_database: tuple[Client, uuid.UUID, dict[str, str], Path],
) -> None:
    client, org, env, target = usage_database
    insert_events(client, org, [
        ("t0", "2024-01-09T10:00:00", {"gb": "5"}, ""),
        ("t1", "2024-01-10T10:00:00", {"gb": "1.5", "region": "eu"}, ""),
        ("t2", "2024-01-10T11:00:00", {"gb": "2", "region": "eu"}, ""),
        ("t3", "2024-01-10T12:00:00", {"gb": "0.5", "region": "us"}, ""),
        ("t4", "2024-01-11T10:00:00", {"gb": "1", "region": "us"}, ""),
        ("t5", "2024-01-11T10:30:00", {"gb": "1"}, ""),
    ])  # fmt: skip
    run_models(env, target)
    # The watermark is now t5's ingested_at, 2024-01-11 10:31: the next build re-aggregates
    # the days of events ingested after 09:31 (one hour of margin for inserts in flight).
    later = "2024-01-12T09:00:00"
    insert_events(client, org, [
        ("t1", "2024-01-10T10:00:00", {"gb": "1.5", "region": "eu"}, later),  # a retry
        ("t6", "2024-01-10T23:00:00", {"gb": "4", "region": "eu"}, later),  # late, old day
        # A new day; a region not among the declared values is counted all the same.
        ("t7", "2024-01-12T08:00:00", {"gb": "3", "region": "apac", "user": "u7"}, ""),
        # Ingested long before the watermark (an insert that became visible very late), on a
        # day that gets no new event: Jan 9 is not read again, t8 waits for a full refresh.
        ("t8", "2024-01-09T09:00:00", {"gb": "100"}, ""),
    ])  # fmt: skip
    # A code without a metric, retried (two inserts, so both rows are stored): left out of both
    # marts, and its stored rows do not send its day to FINAL.
    for ingested_at in ("", later):
        insert_events(client, org, [("c1", "2024-01-12T08:30:00", {"region": "eu"}, ingested_at)],
                      code="clicks")  # fmt: skip
    run_models(env, target)

    assert rows(
        client,
        "select date, events_count, field_value_sum from fct_usage_daily_by_subscription"
        " order by date",
    ) == [
        (date(2024, 1, 9), 1, Decimal("5")),  # t0 as first built (no t8)
        (date(2024, 1, 10), 4, Decimal("8")),  # t1-t3 and t6: 1.5 + 2 + 0.5 + 4
        (date(2024, 1, 11), 2, Decimal("2")),  # t4, t5: read again (margin), unchanged
        (date(2024, 1, 12), 1, Decimal("3")),  # t7
    ]
    assert rows(
        client,
        "select date, billable_metric_code, property_key, property_value, events_count"
        " from fct_usage_daily_by_property order by date, property_value",
    ) == [
        (date(2024, 1, 10), "storage", "region", "eu", 3),  # t1 once, t2, t6
        (date(2024, 1, 10), "storage", "region", "us", 1),  # t3
        (date(2024, 1, 11), "storage", "region", "us", 1),  # t4 (t5 has no region)
        (date(2024, 1, 12), "storage", "region", "apac", 1),  # t7; not c1, gb or user
    ]
