"""Receivables: what is owed, by age past the due date, and the overdue invoices."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from dashboards.data import query
from dashboards.filters import download, sidebar_filters

BUCKETS = ["not_due", "1-30", "31-60", "61-90", "90+"]

st.title("Receivables")
filters = sidebar_filters()
if filters is None:
    st.stop()
assert filters is not None
st.caption("Ages are measured at the rating day of the last dbt build.")

where, parameters = filters.where(date_column="issuing_date")
aging = filters.money(
    query(
        "select aging_bucket, currency, sum(outstanding_amount_cents) as outstanding,"
        " count() as invoices"
        f" from fct_invoices where {where} and outstanding_amount_cents > 0"
        " group by aging_bucket, currency",
        parameters,
    ),
    ["aging_bucket"],
    ["outstanding"],
    cents=True,
)
total = aging["outstanding"].sum() if not aging.empty else 0
overdue_total = (
    aging[aging["aging_bucket"] != "not_due"]["outstanding"].sum() if not aging.empty else 0
)
kpis = st.columns(2)
kpis[0].metric("Outstanding", filters.format(total))
kpis[1].metric("Overdue", filters.format(overdue_total))
if not aging.empty:
    st.plotly_chart(
        px.bar(aging, x="aging_bucket", y="outstanding", category_orders={"aging_bucket": BUCKETS}),
        width="stretch",
        key="aging",
    )
download(aging, "receivables_aging")

st.subheader("Overdue invoices")
overdue = query(
    "select number, external_customer_id, currency, issuing_date, payment_due_date, days_overdue,"
    " aging_bucket, total_amount_cents, paid_amount_cents, outstanding_amount_cents"
    f" from fct_invoices where {where} and is_overdue order by days_overdue desc",
    parameters,
)
download(overdue, "overdue_invoices")
