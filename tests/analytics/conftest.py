"""One database holding the revenue scenario with the analytics marts built over it.

The marts are dbt tables over every organization of a database, so the scenario gets a database
of its own (the session warehouse is shared); dbt runs once per session, as `meterhouse` runs it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from clickhouse_connect.driver.client import Client

from meterhouse.orgs import create_organization
from tests.analytics.dbt_runner import build_analytics
from tests.analytics.scenario import RATING_AS_OF, RevenueScenario, build_revenue_scenario
from tests.conftest import Warehouse
from warehouse.client import get_client
from warehouse.migrate import migrate
from warehouse.settings import Settings


@dataclass(frozen=True)
class AnalyticsDatabase:
    warehouse: Warehouse
    database: str
    scenario: RevenueScenario
    api_key: str

    @property
    def env(self) -> dict[str, str]:
        return {**self.warehouse.env, "MH_WAREHOUSE_DATABASE": self.database}

    def settings(self) -> Settings:
        return self.warehouse.settings().model_copy(update={"warehouse_database": self.database})

    def client(self) -> Client:
        return get_client(self.settings())


@pytest.fixture(scope="session")
def analytics(
    warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AnalyticsDatabase]:
    database = f"mh_analytics_{secrets.token_hex(4)}"
    migrate(warehouse.client(database=""), database)
    client = get_client(warehouse.settings(), database=database)
    organization, api_key = create_organization(client, "Analytics scenario")
    scenario = build_revenue_scenario(client, organization.organization_id)
    build_analytics(
        {**warehouse.env, "MH_WAREHOUSE_DATABASE": database},
        tmp_path_factory.mktemp("dbt_analytics"),
        RATING_AS_OF,
    )
    yield AnalyticsDatabase(warehouse, database, scenario, api_key)
    warehouse.client(database="").command(f"DROP DATABASE IF EXISTS `{database}`")
