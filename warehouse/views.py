"""Views rated on read, queried through their own stored query.

The views that rate on read are built by dbt: ``fct_current_usage``, ``fct_estimated_fees`` and
``fct_pay_in_advance_fees_since`` are parameterized, ``fct_open_period_fees`` is not. Selecting
from a parameterized view cost the warehouse about twice as much as running the view's stored
query with the same parameters bound (on the 1M rating benchmark's warehouse: current usage
4.6-5.4 s against 2.2-2.5 s, a fee estimate 3.3-3.7 s against 1.8-2.3 s; most of either is the
analysis of the inlined rating macros), and a plain one about a second more (5.0-6.1 s against
3.9-5.4 s for ``fct_open_period_fees`` at 100M events). So callers read the view's query from
the warehouse's catalog on each call and run it with their parameters: dbt still owns the SQL,
and a view that a run re-created is read anew.

The current-usage views and the fee estimate also have a copy compiled for the catalog of the last
rating run (``<view>_in_use``: only the usage features, charge models and rounding precisions in
use, about half the analysis); ``query_view_in_use`` reads it, and the whole view once the catalog
has gained a feature since.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

T = TypeVar("T")

VIEW_QUERY_SQL = """
SELECT as_select FROM system.tables
WHERE database = currentDatabase() AND name = {name:String} AND engine = 'View'
"""


class ViewNotFound(LookupError):
    """The view does not exist (yet): dbt has not built it in this database."""

    def __init__(self, name: str) -> None:
        super().__init__(f"view {name} not found: `meterhouse rate run` builds it")


def view_query(client: Client, name: str) -> str:
    """The stored query of view ``name`` in the client's database, its parameters left as
    ``{name:Type}`` placeholders for the caller to bind."""
    rows = client.query(VIEW_QUERY_SQL, parameters={"name": name}).result_rows
    if not rows:
        raise ViewNotFound(name)
    return str(rows[0][0])


# The settings a query over a view rated on read runs with: the views read their open periods
# from a materialized CTE (inlined at each reference without the setting). The query plan keeps
# its expression steps apart: merged, the billing periods' date arithmetic over every subscription
# of the organization cost each read of the periods about twice as much (the dbt README, "Current
# usage: the periods' expression steps").
RATED_ON_READ_SETTINGS = {"enable_materialized_cte": 1, "query_plan_merge_expressions": 0}

# What the guards of a view compiled for the catalog in use fail with, once the catalog has gained
# a usage feature, charge model or rounding precision that the view compiled out.
COMPILED_OUT_FAILURE = "was added to the catalog during the run"


def query_view_in_use(client: Client, name: str, run: Callable[[str], T]) -> T:
    """``run`` over the stored query of ``<name>_in_use``, view ``name`` compiled for the catalog
    of the last rating run, or over ``name``'s own when the catalog has gained a feature since
    (the compiled view's guards fail the query) or the run predates the compiled view."""
    try:
        return run(view_query(client, f"{name}_in_use"))
    except ViewNotFound:
        pass
    except DatabaseError as failure:
        if COMPILED_OUT_FAILURE not in str(failure):
            raise
    return run(view_query(client, name))
