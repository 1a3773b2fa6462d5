"""Fixtures of the invoicing tests that bill days of their own database."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from tests.conftest import Warehouse
from tests.invoicing.catalog import fresh_database


@pytest.fixture
def client(warehouse: Warehouse) -> Client:
    """A new migrated database with the fct_fees contract table."""
    return fresh_database(warehouse)
