"""Overview: KPI row, MRR trend, MRR movements waterfall."""

from __future__ import annotations

from decimal import Decimal

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboards.data import query
from dashboards.filters import download, sidebar_filters

MOVEMENTS = ["new", "reactivation", "expansion", "contraction", "churn"]

st.title("Overview")
filters = sidebar_filters()
if filters is None:
    st.stop()
assert filters is not None

where, parameters = filters.where(date_column="date", plan_column="plan_code")
daily = filters.money(
    query(
        f"select date, currency, sum(mrr) as mrr from fct_mrr_daily_by_plan where {where}"
        " group by date, currency",
        parameters,
    ),
    ["date"],
    ["mrr"],
)
# Movements are per customer: they cover every plan whatever the plan filter.
where, parameters = filters.where(date_column="month")
movements = filters.money(
    query(
        "select month, currency, sum(opening_mrr) as opening, sum(new_mrr) as new,"
        " sum(reactivation_mrr) as reactivation, sum(expansion_mrr) as expansion,"
        " sum(contraction_mrr) as contraction, sum(churned_mrr) as churn,"
        " sum(closing_mrr) as closing"
        f" from fct_mrr_movements where {where} group by month, currency",
        parameters,
    ),
    ["month"],
    ["opening", *MOVEMENTS, "closing"],
)
# The money KPIs in one query: this month's gross revenue and what invoices issued up to the
# end of the range still owe, per currency.
where, parameters = filters.where()
totals = filters.money(
    query(
        "select currency, sum(revenue) as revenue, sum(outstanding) as outstanding from ("
        " select currency, amount_cents as revenue, 0 as outstanding"
        f" from fct_gross_revenue_monthly where {where} and month = toStartOfMonth({{end:Date}})"
        " union all"
        " select currency, 0, outstanding_amount_cents"
        f" from fct_invoices where {where} and issuing_date <= {{end:Date}}"
        ") group by currency",
        {**parameters, "end": filters.end},
    ),
    [],
    ["revenue", "outstanding"],
    cents=True,
)

mrr = Decimal(daily["mrr"].iloc[-1]) if not daily.empty else Decimal(0)
last_month = movements.iloc[-1] if not movements.empty else None
nrr = (
    (
        last_month["opening"]
        + last_month["expansion"]
        - last_month["contraction"]
        - last_month["churn"]
    )
    / last_month["opening"]
    if last_month is not None and last_month["opening"]
    else None
)
kpis = st.columns(5)
kpis[0].metric("MRR", filters.format(mrr))
kpis[1].metric("ARR", filters.format(mrr * 12))
kpis[2].metric(
    f"Revenue {filters.end:%b %Y}",
    filters.format(totals["revenue"].iloc[0] if not totals.empty else Decimal(0)),
)
kpis[3].metric(
    "Outstanding",
    filters.format(totals["outstanding"].iloc[0] if not totals.empty else Decimal(0)),
)
kpis[4].metric("Net revenue retention", "-" if nrr is None else f"{nrr * 100:.1f} %")

st.subheader("MRR trend")
st.plotly_chart(
    px.line(daily, x="date", y="mrr", labels={"mrr": f"MRR ({filters.display_currency})"}),
    width="stretch",
    key="mrr_trend",
)

st.subheader("MRR movements")
if not movements.empty:
    steps = [movements["opening"].iloc[0]] + [
        movements[m].sum() * (-1 if m in ("contraction", "churn") else 1) for m in MOVEMENTS
    ]
    waterfall = go.Figure(
        go.Waterfall(
            x=["Opening", *[m.capitalize() for m in MOVEMENTS], "Closing"],
            measure=["absolute", *["relative"] * len(MOVEMENTS), "total"],
            y=[*steps, None],
        )
    )
    st.plotly_chart(waterfall, width="stretch", key="movements_waterfall")
download(movements, "mrr_movements")
