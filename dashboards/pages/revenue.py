"""Revenue: by plan, metric and customer (rated fees and invoices), invoiced versus paid."""

from __future__ import annotations

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

where, parameters = filters.where(date_column="month", plan_column="plan_code")
lines = query(
    "select month, currency, plan_code,"
    " if(billable_metric_code = '', fee_type, billable_metric_code) as metric,"
    " external_customer_id, sum(rated_amount) as rated,"
    " sum(invoiced_amount_cents) as invoiced_cents"
    f" from fct_revenue_monthly where {where}"
    " group by month, currency, plan_code, metric, external_customer_id",
    parameters,
)
rated = filters.money(
    lines.drop(columns=["invoiced_cents"]),
    ["month", "plan_code", "metric", "external_customer_id"],
    ["rated"],
)
invoiced = filters.money(
    lines.drop(columns=["rated"]),
    ["month", "plan_code", "metric", "external_customer_id"],
    ["invoiced_cents"],
    cents=True,
).rename(columns={"invoiced_cents": "invoiced"})
revenue = rated.merge(
    invoiced, on=["month", "plan_code", "metric", "external_customer_id"], how="outer"
)

total_rated = revenue["rated"].sum() if not revenue.empty else 0
total_invoiced = revenue["invoiced"].sum() if not revenue.empty else 0
kpis = st.columns(2)
kpis[0].metric("Rated revenue", filters.format(total_rated))
kpis[1].metric("Invoiced revenue", filters.format(total_invoiced))

by_plan = revenue.groupby(["month", "plan_code"], as_index=False)[["rated", "invoiced"]].sum()
st.subheader("By plan")
st.plotly_chart(
    px.bar(by_plan, x="month", y="rated", color="plan_code", labels={"rated": "rated"}),
    width="stretch",
    key="revenue_by_plan",
)
left, right = st.columns(2)
with left:
    st.subheader("By metric")
    by_metric = revenue.groupby("metric", as_index=False)[["rated", "invoiced"]].sum()
    download(by_metric, "revenue_by_metric")
with right:
    st.subheader("Top customers")
    by_customer = (
        revenue.groupby("external_customer_id", as_index=False)[["rated", "invoiced"]]
        .sum()
        .sort_values("rated", ascending=False)
    )
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
