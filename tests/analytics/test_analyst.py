"""The README's "Query your billing data" guide, run as the read-only analyst: every documented
query answers over the revenue scenario's marts (clickhouse-connect and plain HTTP, as curl
sends it), and writes are refused."""

from __future__ import annotations

import re

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.analytics.conftest import AnalyticsDatabase
from tests.support.processes import REPO_ROOT
from warehouse.client import get_client

pytestmark = pytest.mark.embedded  # the analyst user is the embedded server's


def documented_queries() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Query your billing data", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def analyst(analytics: AnalyticsDatabase) -> Client:
    warehouse = analytics.warehouse
    assert warehouse.analyst_user and warehouse.analyst_password
    return get_client(
        analytics.settings(), user=warehouse.analyst_user, password=warehouse.analyst_password
    )


def test_the_guide_documents_five_queries() -> None:
    assert len(documented_queries()) == 5


@pytest.mark.parametrize("number", range(5))
def test_documented_query_runs_as_the_analyst(
    analyst: Client, analytics: AnalyticsDatabase, number: int
) -> None:
    result = analyst.query(documented_queries()[number])
    organization = analytics.scenario.organization_id
    rows = [row for row in result.result_rows if row[0] == organization]
    assert rows, f"query {number + 1} returned nothing for the scenario"


def test_mrr_query_shows_the_scenario_figures(
    analyst: Client, analytics: AnalyticsDatabase
) -> None:
    result = analyst.query(documented_queries()[0])
    mrr = [
        int(row[3]) for row in result.result_rows if row[0] == analytics.scenario.organization_id
    ]
    assert mrr == [200, 650, 720, 720]


def test_curl_style_get_as_the_analyst(analytics: AnalyticsDatabase) -> None:
    warehouse = analytics.warehouse
    response = httpx.get(
        f"{warehouse.url}/",
        params={
            "database": analytics.database,
            "default_format": "TabSeparated",
            "query": "select sum(mrr_cents) from fct_saas_metrics_monthly"
            f" where organization_id = '{analytics.scenario.organization_id}'",
        },
        headers={
            "X-ClickHouse-User": str(warehouse.analyst_user),
            "X-ClickHouse-Key": str(warehouse.analyst_password),
        },
    )
    assert response.status_code == 200, response.text
    assert response.text.strip() == str(20_000 + 65_000 + 72_000 + 72_000)


@pytest.mark.parametrize(
    "statement",
    [
        "insert into fct_invoices (organization_id) values (generateUUIDv4())",
        "alter table fct_invoices delete where 1",
        "drop table fct_mrr_daily",
        "create table analyst_scratch (x UInt8) engine = Memory",
        "truncate table fct_usage_daily",
    ],
)
def test_writes_are_refused(
    analyst: Client, admin_count: int, statement: str, analytics: AnalyticsDatabase
) -> None:
    with pytest.raises(DatabaseError):
        analyst.command(statement)
    assert analytics.client().command("select count() from fct_mrr_daily") == admin_count


@pytest.fixture(scope="module")
def admin_count(analytics: AnalyticsDatabase) -> int:
    count = analytics.client().command("select count() from fct_mrr_daily")
    assert isinstance(count, int) and count > 0
    return count
