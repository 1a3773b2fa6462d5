"""A parameterized view's stored query, run with its parameters bound (warehouse/views.py)."""

from __future__ import annotations

import secrets

import pytest

from tests.conftest import Warehouse
from warehouse.views import ViewNotFound, view_query


def test_a_views_query_runs_with_its_parameters_as_the_view_does(warehouse: Warehouse) -> None:
    client = warehouse.client()
    name = f"doubled_{secrets.token_hex(4)}"
    client.command(
        f"CREATE VIEW {name} AS SELECT number * 2 AS doubled FROM numbers({{count:UInt8}})"
    )
    try:
        query = view_query(client, name)
        assert "{count:UInt8}" in query
        from_query = client.query(f"SELECT sum(doubled) FROM ({query})", parameters={"count": 4})
        from_view = client.query(f"SELECT sum(doubled) FROM {name}(count = 4)")
        assert from_query.result_rows == from_view.result_rows == [(12,)]
    finally:
        client.command(f"DROP VIEW {name}")


def test_a_missing_view_is_named(warehouse: Warehouse) -> None:
    with pytest.raises(ViewNotFound, match="fct_not_built"):
        view_query(warehouse.client(), "fct_not_built")
