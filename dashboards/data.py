"""Reading the marts for the dashboards: one cached client per warehouse, cached query results.

Every page reads dbt marts through clickhouse-connect, with bound parameters. The one exception
is the live Usage page's filter by a property no billable metric declares: it reads the events
table, bounded by organization and date range (a declared property reads its daily rollup).
Results are cached for a minute, so moving between pages and filters does not query the
warehouse again.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from warehouse.client import get_client, is_unknown_table
from warehouse.settings import Settings

CACHE_TTL_S = 60
MARTS_NOT_BUILT = (
    "The revenue marts are not built yet: `meterhouse rate analytics` builds them "
    "(`make up` runs it on its first start)."
)
WAREHOUSE_UNREACHABLE = "The warehouse cannot be reached: reload the page once it is back."


@st.cache_resource(show_spinner=False)
def _client(url: str, user: str, password: str, database: str) -> Client:
    settings = Settings(
        warehouse_url=url,
        warehouse_user=user,
        warehouse_password=password,
        warehouse_database=database,
    )
    # Streamlit runs each session's script in its own thread: no shared session id.
    return get_client(settings, autogenerate_session_id=False)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _cached_query(
    warehouse: tuple[str, str, str, str], sql: str, parameters: dict[str, Any]
) -> pd.DataFrame:
    result = _client(*warehouse).query(sql, parameters=parameters)
    return pd.DataFrame(result.result_rows, columns=list(result.column_names))


def query(sql: str, parameters: dict[str, Any] | None = None) -> pd.DataFrame:
    """Rows of ``sql`` as a DataFrame; Decimal columns stay Decimal (money is never a float).

    Settings are read on every call rather than through the process-wide get_settings(), so the
    warehouse (part of the cache key) follows the environment the app was started with.
    """
    settings = Settings()
    warehouse = (
        settings.warehouse_url,
        settings.warehouse_user,
        settings.effective_warehouse_password(),
        settings.warehouse_database,
    )
    # Rather than a traceback: the warehouse down or restarting, or a new deployment before its
    # first analytics build.
    try:
        return _cached_query(warehouse, sql, parameters or {})
    except OperationalError:  # no answer at all
        st.error(WAREHOUSE_UNREACHABLE)
    except DatabaseError as error:
        if not is_unknown_table(error):
            raise
        st.info(MARTS_NOT_BUILT)
    st.stop()
