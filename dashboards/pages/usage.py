"""Usage: events per metric and customer, daily trend; a filter by event property.

The property filter offers the keys the metrics declare as filters (and their values), read from
fct_usage_daily_by_property; any other key is read live from the events table, bounded by the
organization, the date range and the metrics, and labelled so on the page (the one query of the
dashboards on raw events).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards.data import query
from dashboards.filters import download, sidebar_filters

# The property choice that reads a key no metric declares live from the events table.
UNDECLARED = "Another property (read live from the events)"


def whole_months(start: date, end: date) -> tuple[date, date]:
    """The first days of the first and last months lying wholly within [start, end] (the first
    after the last when there is none)."""
    first = start if start.day == 1 else (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    last = ((end + timedelta(days=1)).replace(day=1) - timedelta(days=1)).replace(day=1)
    return first, last


def live_property_counts(
    parameters: dict[str, Any], property_key: str, property_value: str
) -> pd.DataFrame:
    """Daily events of the chosen metrics carrying a property (with a value, unless empty),
    straight from the events table: retries deduplicated with FINAL, bounded by the sorting
    key's organization and the date range (its monthly partitions outside it are not read)."""
    return query(
        "select toDate(timestamp, 'UTC') as date, code as billable_metric_code,"
        " count() as events_count from events final"
        " where organization_id = {o:UUID}"
        " and timestamp >= toDateTime64({start:Date}, 3, 'UTC')"
        " and timestamp < toDateTime64({end:Date} + 1, 3, 'UTC')"
        " and code in {metrics:Array(String)} and mapContains(properties, {key:String})"
        " and ({value:String} = '' or properties[{key:String}] = {value:String})"
        " group by date, billable_metric_code order by date, billable_metric_code",
        {**parameters, "key": property_key, "value": property_value},
    )


st.title("Usage")
filters = sidebar_filters()
if filters is None:
    st.stop()
assert filters is not None

# Usage is counted in events, not money: the currency filter does not apply.
parameters = {"o": filters.organization_id, "start": filters.start, "end": filters.end}
scope = "organization_id = {o:UUID} and date between {start:Date} and {end:Date}"
# Every metric's daily usage in the range: it also lists the metrics to choose from.
every_metric = query(
    "select date, billable_metric_code, sum(events_count) as events_count"
    f" from fct_usage_daily_by_metric where {scope}"
    " group by date, billable_metric_code order by date, billable_metric_code",
    parameters,
)
metrics = sorted(set(every_metric["billable_metric_code"]))
chosen = st.multiselect("Metrics", metrics, key="usage_metrics", placeholder="All metrics")
parameters["metrics"] = chosen or metrics
scope += " and billable_metric_code in {metrics:Array(String)}"

# The property keys the chosen metrics declare as filters (Lago's billable metric filters), with
# their declared values: the property rollup keeps those keys only.
declared = query(
    "select billable_metric_code, filters from stg_warehouse__billable_metrics"
    " where organization_id = {o:UUID} and billable_metric_code in {metrics:Array(String)}"
    " and notEmpty(filters) order by billable_metric_code",
    parameters,
)
declared_values: dict[str, set[str]] = {}
declaring: dict[str, list[str]] = {}
for code, filters_of_metric in zip(
    declared["billable_metric_code"], declared["filters"], strict=True
):
    for key, values in filters_of_metric.items():
        declared_values.setdefault(key, set()).update(values)
        declaring.setdefault(key, []).append(code)

with st.expander("Filter by event property"):
    property_key = st.selectbox(
        "Property",
        [*sorted(declared_values), UNDECLARED],
        index=None,
        key="usage_property_key",
        placeholder="No property filter",
        help="The properties the metrics declare as filters, from their daily rollup.",
    )
    live = property_key == UNDECLARED
    if live:
        property_key = st.text_input("Undeclared property", key="usage_other_property").strip()
    if property_key and not live:
        # The declared values, and any other value the events carried in the range.
        seen = query(
            "select distinct property_value from fct_usage_daily_by_property"
            f" where {scope} and property_key = {{key:String}}",
            {**parameters, "key": property_key},
        )
        values = sorted(declared_values[property_key] | set(seen["property_value"]))
        property_value = st.selectbox(
            "Value", values, index=None, key="usage_property_value", placeholder="Any value"
        )
    elif property_key:
        property_value = st.text_input("Value", key="usage_other_value").strip()
    else:
        property_value = None

if property_key and not live:
    # Counted for the metrics that declare the key only: their daily rollup of it.
    st.caption(f"{property_key}: declared by {', '.join(declaring[property_key])}.")
    daily = query(
        "select date, billable_metric_code, sum(events_count) as events_count"
        f" from fct_usage_daily_by_property where {scope} and property_key = {{key:String}}"
        " and ({value:String} = '' or property_value = {value:String})"
        " group by date, billable_metric_code order by date",
        {**parameters, "key": property_key, "value": property_value or ""},
    )
elif property_key:
    st.caption(
        f"{property_key}: no metric declares it, so it is read live from the events table"
        " (this organization, range and metrics)."
    )
    daily = live_property_counts(parameters, property_key, property_value or "")
else:
    daily = every_metric[every_metric["billable_metric_code"].isin(parameters["metrics"])]
    daily = daily.reset_index(drop=True)
st.metric("Events", int(daily["events_count"].sum()) if not daily.empty else 0)
st.subheader("Daily usage per metric")
st.plotly_chart(
    px.line(daily, x="date", y="events_count", color="billable_metric_code"),
    width="stretch",
    key="usage_trend",
)
st.subheader("Top customers")
# Whole months of the range from the monthly rollup, the partial months at its edges by day.
months_from, months_to = whole_months(filters.start, filters.end)
customers = query(
    "select external_customer_id, billable_metric_code, sum(events_count) as events_count,"
    " sum(field_value_sum) as field_value_sum from ("
    " select external_customer_id, billable_metric_code, events_count, field_value_sum"
    " from fct_usage_monthly_by_customer where organization_id = {o:UUID}"
    " and month between {months_from:Date} and {months_to:Date}"
    " and billable_metric_code in {metrics:Array(String)}"
    " union all"
    " select external_customer_id, billable_metric_code, events_count, field_value_sum"
    f" from fct_usage_daily where {scope}"
    " and not (date >= {months_from:Date} and date < addMonths({months_to:Date}, 1))"
    ") group by external_customer_id, billable_metric_code order by events_count desc limit 50",
    {**parameters, "months_from": months_from, "months_to": months_to},
)
download(customers, "usage_by_customer")
download(daily, "usage_daily")
