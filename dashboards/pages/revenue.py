"""Revenue: by plan, metric and customer (rated fees and invoices), invoiced versus paid."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards.data import query
from dashboards.filters import download, sidebar_filters

st.title("Revenue")
filters = sidebar_filters()
if filters is None:
    st.stop()
assert filters is not None
st.caption(
    "Rated: fees computed by rating, by billing date. Invoiced: lines of finalized invoices, "
    "by issuing month (before coupons and taxes)."
)

# The three breakdowns in one query, summed by the warehouse: by month and plan, by metric
# (or fee type), by customer; `breakdown` tells their rows apart.
where, parameters = filters.where(date_column="month", plan_column="plan_code")
amounts = (
    "sum(rated_amount) as rated, sum(invoiced_amount_cents) as invoiced_cents"
    f" from fct_revenue_monthly where {where}"
)
breakdowns = query(
    "select 'plan' as breakdown, currency, month, plan_code as label,"
    f" {amounts} group by currency, month, plan_code"
    " union all"
    " select 'metric', currency, toDate(0),"
    " if(billable_metric_code = '', fee_type, billable_metric_code) as metric,"
    f" {amounts} group by currency, metric"
    " union all"
    " select 'customer', currency, toDate(0), external_customer_id,"
    f" {amounts} group by currency, external_customer_id",
    parameters,
)


def breakdown(name: str, by: list[str]) -> pd.DataFrame:
    """One breakdown's rated and invoiced amounts in the display currency, by ``by``."""
    rows = breakdowns[breakdowns["breakdown"] == name].rename(columns={"label": by[-1]})
    if rows.empty:
        return pd.DataFrame(columns=[*by, "rated", "invoiced"])
    rows = rows[["currency", *by, "rated", "invoiced_cents"]]
    rated = filters.money(rows.drop(columns=["invoiced_cents"]), by, ["rated"])
    invoiced = filters.money(
        rows.drop(columns=["rated"]), by, ["invoiced_cents"], cents=True
    ).rename(columns={"invoiced_cents": "invoiced"})
    return rated.merge(invoiced, on=by, how="outer")


by_plan = breakdown("plan", ["month", "plan_code"])
by_metric = breakdown("metric", ["metric"])
by_customer = breakdown("customer", ["external_customer_id"]).sort_values("rated", ascending=False)

total_rated = by_metric["rated"].sum() if not by_metric.empty else 0
total_invoiced = by_metric["invoiced"].sum() if not by_metric.empty else 0
kpis = st.columns(2)
kpis[0].metric("Rated revenue", filters.format(total_rated))
kpis[1].metric("Invoiced revenue", filters.format(total_invoiced))

st.subheader("By plan")
st.plotly_chart(
    px.bar(by_plan, x="month", y="rated", color="plan_code", labels={"rated": "rated"}),
    width="stretch",
    key="revenue_by_plan",
)
left, right = st.columns(2)
with left:
    st.subheader("By metric")
    download(by_metric, "revenue_by_metric")
with right:
    st.subheader("Top customers")
    download(by_customer, "revenue_by_customer")

st.subheader("Invoiced versus paid")
where, parameters = filters.where(date_column="issuing_date")
collected = filters.money(
    query(
        "select issuing_month as month, currency, sum(total_amount_cents) as invoiced,"
        " sum(paid_amount_cents) as paid, sum(credited_amount_cents) as credited,"
        " sum(refunded_amount_cents) as refunded, sum(outstanding_amount_cents) as outstanding"
        f" from fct_invoices where {where} and status = 'finalized'"
        " group by month, currency",
        parameters,
    ),
    ["month"],
    ["invoiced", "paid", "credited", "refunded", "outstanding"],
    cents=True,
)
if not collected.empty:
    st.plotly_chart(
        px.bar(collected, x="month", y=["invoiced", "paid"], barmode="group"),
        width="stretch",
        key="invoiced_vs_paid",
    )
download(collected, "invoiced_vs_paid")
download(by_plan, "revenue_by_plan")
