"""Usage: events per metric and customer, daily trend; a filter by event property."""

from __future__ import annotations

from datetime import date, timedelta

import plotly.express as px
import streamlit as st

from dashboards.data import query
from dashboards.filters import download, sidebar_filters


def whole_months(start: date, end: date) -> tuple[date, date]:
    """The first days of the first and last months lying wholly within [start, end] (the first
    after the last when there is none)."""
    first = start if start.day == 1 else (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    last = ((end + timedelta(days=1)).replace(day=1) - timedelta(days=1)).replace(day=1)
    return first, last


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

with st.expander("Filter by event property (daily counts of every event property)"):
    property_key = st.text_input("Property", key="usage_property_key").strip()
    property_value = st.text_input("Value", key="usage_property_value").strip()

if property_key:
    # Properties are not kept in the usage marts: their own daily rollup counts the events of
    # each property key and value.
    daily = query(
        "select date, billable_metric_code, sum(events_count) as events_count"
        f" from fct_usage_daily_by_property where {scope} and property_key = {{key:String}}"
        " and ({value:String} = '' or property_value = {value:String})"
        " group by date, billable_metric_code order by date",
        {**parameters, "key": property_key, "value": property_value},
    )
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
